"""Secret stack settings: set with `pulumi config set --secret`, never kept in plain text.

Each secret config key feeds one key of one AWS Secrets Manager secret, which External Secrets
turns into a Kubernetes Secret of the same name in the application namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import pulumi

from stacks.settings_base import invalid


class SecretField(NamedTuple):
    secret: str  # the Secrets Manager secret and the Kubernetes Secret it becomes
    key: str  # the key inside it


SECRET_CONFIG_KEYS: dict[str, SecretField] = {
    "openaiApiKey": SecretField("api-credentials", "openai-api-key"),
    "plaidClientId": SecretField("api-credentials", "plaid-client-id"),
    "plaidSecret": SecretField("api-credentials", "plaid-secret"),
}

# The platform's own secrets (EKS stacks, with monitoring): delivered into the monitoring
# namespace only, never to the services.
ALERT_RECEIVERS = "alert-receivers"
GRAFANA_ADMIN = "grafana-admin"
# The dead man's switch: the URL Alertmanager pings with the always-firing Watchdog (it holds
# the heartbeat service's key).
HEARTBEAT_URL_KEY = "heartbeat-url"
PLATFORM_SECRET_CONFIG_KEYS: dict[str, SecretField] = {
    "alertPagerdutyRoutingKey": SecretField(ALERT_RECEIVERS, "pagerduty-routing-key"),
    "alertSlackWebhookUrl": SecretField(ALERT_RECEIVERS, "slack-webhook-url"),
    "alertHeartbeatUrl": SecretField(ALERT_RECEIVERS, HEARTBEAT_URL_KEY),
}
PLATFORM_SECRETS = frozenset({ALERT_RECEIVERS, GRAFANA_ADMIN})
ALL_SECRET_CONFIG_KEYS = {**SECRET_CONFIG_KEYS, **PLATFORM_SECRET_CONFIG_KEYS}


# The operator UIs' sign-in at the load balancer (edge.operatorAccess.oidc): the OIDC client's
# ID (a setting) and secret, in the Secret the AWS Load Balancer Controller reads (its keys are
# the controller's: clientID, clientSecret). Needed where operators sign in with OIDC.
OPERATOR_SSO = "operator-sso"
OPERATOR_SSO_CLIENT_SECRET = "operatorOidcClientSecret"
CONDITIONAL_SECRET_CONFIG_KEYS: dict[str, SecretField] = {
    OPERATOR_SSO_CLIENT_SECRET: SecretField(OPERATOR_SSO, "clientSecret"),
}
PLATFORM_SECRETS = PLATFORM_SECRETS | {OPERATOR_SSO}

# The PagerDuty integration key (an "Amazon CloudWatch" integration) that GuardDuty findings
# page through: the findings topic's HTTPS subscriber. Needed where GuardDuty is on.
FINDINGS_PAGER_KEY = "securityFindingsPagerdutyKey"
# Secret config keys that are not settings.
NOT_SETTINGS = frozenset(
    {*ALL_SECRET_CONFIG_KEYS, *CONDITIONAL_SECRET_CONFIG_KEYS, FINDINGS_PAGER_KEY}
)


def secret_config_keys(with_platform: bool) -> dict[str, SecretField]:
    """The secret keys a stack must set: the services' always, the platform's on EKS."""
    return dict(ALL_SECRET_CONFIG_KEYS) if with_platform else dict(SECRET_CONFIG_KEYS)


# Secrets the platform makes itself: the database's master credentials (managed by RDS in
# Secrets Manager) and the Redis auth token (generated with pulumi-random).
DATABASE_CREDENTIALS = "database-credentials"
REDIS_CREDENTIALS = "redis-credentials"
GENERATED_SECRETS: dict[str, frozenset[str]] = {
    DATABASE_CREDENTIALS: frozenset({"username", "password"}),
    REDIS_CREDENTIALS: frozenset({"auth-token"}),
}

# What the services may reference in `secretEnv`: never the database's master credentials,
# which only the database bootstrap job reads (services use IAM authentication).
DELIVERED_SECRETS: dict[str, frozenset[str]] = {
    name: keys for name, keys in GENERATED_SECRETS.items() if name != DATABASE_CREDENTIALS
}
for _field in SECRET_CONFIG_KEYS.values():
    DELIVERED_SECRETS[_field.secret] = DELIVERED_SECRETS.get(_field.secret, frozenset()) | {
        _field.key
    }


def secret_values(
    values: Mapping[str, pulumi.Output[str]],
) -> dict[str, dict[str, pulumi.Output[str]]]:
    """Group the secret config values that Secrets Manager keeps by the secret they belong to:
    {secret: {key: value}}. (The findings pager's key goes to its SNS subscriber instead.)"""
    grouped: dict[str, dict[str, pulumi.Output[str]]] = {}
    kept = {**ALL_SECRET_CONFIG_KEYS, **CONDITIONAL_SECRET_CONFIG_KEYS}
    for config_key, value in values.items():
        if config_key not in kept:
            continue
        target = kept[config_key]
        grouped.setdefault(target.secret, {})[target.key] = value
    return grouped


def check_secret_env(where: str, secret_env: Mapping[str, str]) -> None:
    """Refuse a service's `secretEnv` entry that names a secret key nothing delivers."""
    for variable, reference in secret_env.items():
        secret, _, key = reference.partition("/")
        if key not in DELIVERED_SECRETS.get(secret, frozenset()):
            delivered = sorted(f"{s}/{k}" for s, keys in DELIVERED_SECRETS.items() for k in keys)
            raise invalid(
                f"{where}.secretEnv.{variable}",
                reference,
                f"{reference!r} is not delivered (allowed: {', '.join(delivered)})",
            )
