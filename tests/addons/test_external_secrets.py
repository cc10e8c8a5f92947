"""External Secrets: the pinned operator, its narrow IRSA role and the store it serves."""

from __future__ import annotations

import re

from components.addons.external_secrets import ExternalSecrets
from components.addons.registry import install_addons
from components.context import ClusterContext, StackContext, with_cluster
from components.data.secrets import SecretAccess
from offline.engine import RecordedResource, StackRun
from stacks.addon_settings import ControllerSettings
from tests.harness import run_isolated
from tests.lookup import (
    app_namespace,
    helm_release,
    inline_policy,
    irsa_role,
    objects,
    signs_operators_in,
)


def api_credentials(run: StackRun) -> RecordedResource:
    remote_key = f"financial-planning/{run.stack}/api-credentials"
    [secret] = [
        s for s in run.of_type("aws:secretsmanager/secret:Secret") if s.inputs["name"] == remote_key
    ]
    return secret


def test_external_secret_and_its_store(stack_run: StackRun) -> None:
    [store] = objects(stack_run, "ClusterSecretStore").values()
    assert store["spec"]["provider"] == {
        "aws": {"service": "SecretsManager", "region": "us-east-1"}
    }
    # The services' namespace, monitoring's (Grafana's admin, the alert receivers' keys), and
    # the gateway's (the rate limiter's Redis token; the operators' sign-in client where they
    # sign in). Not the database bootstrap's: it reads the master secret with its own role.
    signs_in = signs_operators_in(stack_run)
    assert store["spec"]["conditions"] == [
        {
            "namespaces": [
                app_namespace(stack_run),
                "monitoring",
                "istio-ingress",
            ]
        }
    ]
    external = objects(stack_run, "ExternalSecret")["api-credentials"]
    assert external["spec"]["secretStoreRef"] == {
        "kind": "ClusterSecretStore",
        "name": store["metadata"]["name"],
    }
    remote_key = f"financial-planning/{stack_run.stack}/api-credentials"
    assert external["spec"]["data"] == [
        {"secretKey": key, "remoteRef": {"key": remote_key, "property": key}}
        for key in ("openai-api-key", "plaid-client-id", "plaid-secret")
    ]
    secret = api_credentials(stack_run)
    assert secret.inputs["name"] == remote_key
    assert secret.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    versions = stack_run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    # api-credentials, redis-credentials, the platform's alert-receivers and grafana-admin, and
    # the operators' sign-in client where they sign in.
    assert len(versions) == 4 + signs_in
    assert all(v.inputs["secretString"] == "[secret]" for v in versions)


def test_external_secrets_operator_is_pinned_and_reads_only_this_stacks_secrets(
    stack_run: StackRun,
) -> None:
    release = helm_release(stack_run, "external-secrets").inputs
    # The documented pinned version (docs/security.md), stated here: a chart upgrade must
    # change this test too.
    assert release["version"] == "0.19.2"
    assert release["repositoryOpts"]["repo"] == "https://charts.external-secrets.io"
    assert release["namespace"] == "external-secrets-system"
    values = release["values"]
    role = irsa_role(stack_run, "external-secrets-system", "external-secrets")
    assert values["serviceAccount"]["name"] == "external-secrets"
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(role.id)
    statements = inline_policy(stack_run, role)
    assert statements[0]["Action"] == [
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    ]
    prefix = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    readable = statements[0]["Resource"]
    # The stack's own secrets: nothing else, no wildcard. Not the database's master secret,
    # which only the database bootstrap's role reads.
    own = ["alert-receivers", "api-credentials", "grafana-admin", "redis-credentials"]
    if signs_operators_in(stack_run):
        own = sorted([*own, "operator-sso"])
    assert len(readable) == len(own) and not any("*" in arn for arn in readable)
    names = sorted(arn.removeprefix(prefix).rsplit("-", 1)[0] for arn in readable)
    assert names == [f"financial-planning/{stack_run.stack}/{secret}" for secret in own]
    keys = statements[1]["Resource"]
    assert len(keys) == 1
    assert statements[1]["Action"] == "kms:Decrypt"
    assert statements[1]["Condition"]["StringEquals"]["kms:ViaService"] == (
        "secretsmanager.us-east-1.amazonaws.com"
    )


def isolated(replicas: int) -> StackRun:
    """The add-on alone, with made-up secrets to read, through the registry."""
    settings = ControllerSettings.model_validate(
        {
            "replicas": replicas,
            "resources": {
                "requests": {"cpu": "10m", "memory": "64Mi"},
                "limits": {"cpu": "100m", "memory": "96Mi"},
            },
        }
    )
    access = SecretAccess(secret_arns=[SECRET_B, SECRET_A], key_arns=[KEY])

    def build(context: StackContext, cluster: ClusterContext) -> object:
        addon = ExternalSecrets(
            settings, region=context.region, access=access, consumer_namespaces=["team-a"]
        )
        return install_addons(context.prefix, [addon], cluster.oidc, with_cluster(context, cluster))

    return run_isolated(build)


SECRET_A = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a-AbCdEf"
SECRET_B = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:b-AbCdEf"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/k"


def test_in_isolation_the_operator_reads_exactly_the_secrets_it_is_given() -> None:
    run = isolated(replicas=1)
    read, decrypt = inline_policy(
        run, irsa_role(run, "external-secrets-system", "external-secrets")
    )
    assert read["Resource"] == [SECRET_A, SECRET_B]
    assert decrypt == {
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": [KEY],
        "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}},
    }
    [store] = objects(run, "ClusterSecretStore").values()
    assert store["spec"]["conditions"] == [{"namespaces": ["team-a"]}]
    assert store["spec"]["provider"]["aws"]["region"] == "eu-west-1"


def test_settings_size_the_operator_and_its_disruption_budget() -> None:
    single = helm_release(isolated(replicas=1), "external-secrets").inputs["values"]
    double = helm_release(isolated(replicas=2), "external-secrets").inputs["values"]
    assert (single["replicaCount"], single["podDisruptionBudget"]["enabled"]) == (1, False)
    assert (double["replicaCount"], double["podDisruptionBudget"]["enabled"]) == (2, True)
    assert double["resources"] == {
        "requests": {"cpu": "10m", "memory": "64Mi"},
        "limits": {"cpu": "100m", "memory": "96Mi"},
    }


def test_production_runs_two_operators_and_staging_one(
    production: StackRun, staging: StackRun
) -> None:
    for run, replicas in ((production, 2), (staging, 1)):
        values = helm_release(run, "external-secrets").inputs["values"]
        assert values["replicaCount"] == replicas
        assert values["resources"] == {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"memory": "256Mi"},
        }


# What each of the chart's Deployments reads for its placement (external-secrets chart 0.19.2,
# templates/deployment.yaml `.Values.*`, webhook-deployment.yaml `.Values.webhook.*`,
# cert-controller-deployment.yaml `.Values.certController.*`): nodeSelector (else
# global.nodeSelector), priorityClassName, resources, replicaCount; the webhook's budget from
# webhook-poddisruptionbudget.yaml (`webhook.podDisruptionBudget.enabled`, maxUnavailable
# before minAvailable).
PLACEMENT_KEYS = ("nodeSelector", "priorityClassName", "resources")


def test_the_webhook_and_cert_controller_are_placed_like_the_controller(
    stack_run: StackRun,
) -> None:
    values = helm_release(stack_run, "external-secrets").inputs["values"]
    controller = {key: values[key] for key in PLACEMENT_KEYS}
    assert controller["nodeSelector"] == {"workload-class": "general"}
    assert controller["priorityClassName"] == "platform-critical"
    for component in ("webhook", "certController"):
        assert {key: values[component][key] for key in PLACEMENT_KEYS} == controller, component
    replicas = values["replicaCount"]
    assert values["webhook"]["replicaCount"] == replicas
    # The budget's bound only where the budget is on: the chart reads maxUnavailable only
    # inside `if .Values.webhook.podDisruptionBudget.enabled`.
    assert values["webhook"]["podDisruptionBudget"] == (
        {"enabled": True, "maxUnavailable": 1} if replicas > 1 else {"enabled": False}
    )
    assert values["certController"]["replicaCount"] == 1


def test_production_runs_two_webhooks_behind_a_budget(production: StackRun) -> None:
    webhook = helm_release(production, "external-secrets").inputs["values"]["webhook"]
    assert webhook["replicaCount"] == 2
    assert webhook["podDisruptionBudget"]["enabled"] is True


def test_the_capacity_check_counts_the_webhook_and_cert_controller(production: StackRun) -> None:
    settings = production.namespace["settings"]
    pods = dict((id(addon), n) for addon, n in settings.addons.controllers())
    # Controller and webhook at `replicas` each, one cert controller.
    assert pods[id(settings.addons.external_secrets)] == 2 * 2 + 1


def test_every_secret_name_is_one_secrets_manager_accepts(stack_run: StackRun) -> None:
    # Secrets Manager CreateSecret: Name up to 512 of letters, digits and /_+=.@-; a name
    # ending in a hyphen and six characters would collide with the ARN's random suffix.
    for secret in stack_run.of_type("aws:secretsmanager/secret:Secret"):
        name = secret.inputs["name"]
        assert re.fullmatch(r"[A-Za-z0-9/_+=.@-]{1,512}", name), name
        assert not re.search(r"-[A-Za-z0-9]{6}$", name), name
