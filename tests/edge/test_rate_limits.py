"""Rate limiting by IP and by user at the gateway (Envoy's global rate limit)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from offline.engine import StackRun
from stacks import SettingsError, settings_from_values
from stacks.merge import deep_merge
from tests.lookup import objects
from tests.test_settings import BASE

GATEWAY = {"istio": "ingressgateway"}


def settings_of(run: StackRun) -> Any:
    return run.namespace["settings"]


def filters(run: StackRun) -> dict[str, dict[str, Any]]:
    return objects(run, "EnvoyFilter")


def test_tokens_are_checked_at_the_gateway(stack_run: StackRun) -> None:
    tokens = settings_of(stack_run).edge.user_tokens
    [auth] = objects(stack_run, "RequestAuthentication").values()
    assert auth["metadata"]["namespace"] == "istio-ingress"
    assert auth["spec"]["selector"] == {"matchLabels": GATEWAY}
    [rule] = auth["spec"]["jwtRules"]
    # The keys at user-service's cluster-local name and port (test_the_token_keys_come_from_
    # user_service_inside_the_mesh), not through the public edge.
    namespace = settings_of(stack_run).application.namespace
    assert (rule["issuer"], rule["jwksUri"]) == (
        tokens.issuer,
        f"http://user-service.{namespace}.svc.cluster.local:8002{tokens.jwks_path}",
    )
    # No claim is copied into a header a client could have sent itself.
    assert "outputClaimToHeaders" not in rule


def test_the_limiter_counts_each_ip_and_each_user(stack_run: StackRun) -> None:
    limits = settings_of(stack_run).edge.rate_limits
    config = yaml.safe_load(
        objects(stack_run, "ConfigMap")["ratelimit-config"]["data"]["config.yaml"]
    )
    # A key without a value: one bucket per distinct address, per distinct user.
    assert config["descriptors"] == [
        {
            "key": "remote_address",
            "rate_limit": {
                "unit": "minute",
                "requests_per_unit": limits.requests_per_minute_per_ip,
            },
        },
        {
            "key": "user",
            "rate_limit": {
                "unit": "minute",
                "requests_per_unit": limits.requests_per_minute_per_user,
            },
        },
    ]
    [patch] = filters(stack_run)["rate-limit-descriptors"]["spec"]["configPatches"]
    actions = [a for r in patch["patch"]["value"]["rate_limits"] for a in r["actions"]]
    assert actions[0] == {"remote_address": {}}
    user = actions[1]["metadata"]
    # The subject of a token the gateway has verified (Istio's jwt_authn metadata), never a
    # request header.
    assert user["metadata_key"] == {
        "key": "envoy.filters.http.jwt_authn",
        "path": [{"key": "payload"}, {"key": "sub"}],
    }
    assert user["skip_if_absent"] is True and user["source"] == "DYNAMIC"
    assert {d["key"] for d in config["descriptors"]} == {"remote_address", user["descriptor_key"]}


def test_the_gateway_asks_the_limiter_on_the_api_host(stack_run: StackRun) -> None:
    edge = settings_of(stack_run).edge
    found = filters(stack_run)
    for envoy_filter in found.values():
        assert envoy_filter["spec"]["workloadSelector"] == {"labels": GATEWAY}
    [http] = found["rate-limit-filter"]["spec"]["configPatches"]
    assert http["applyTo"] == "HTTP_FILTER" and http["patch"]["operation"] == "INSERT_BEFORE"
    assert http["match"]["listener"]["filterChain"]["filter"]["subFilter"] == {
        "name": "envoy.filters.http.router"
    }
    config = http["patch"]["value"]["typed_config"]
    config_map = objects(stack_run, "ConfigMap")["ratelimit-config"]["data"]["config.yaml"]
    assert config["domain"] == yaml.safe_load(config_map)["domain"]
    # Fail open: the web ACL's limit still holds when the limiter is down.
    assert config["failure_mode_deny"] is False
    cluster = config["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    direction, port, _, host = cluster.split("|")
    service = objects(stack_run, "Service")["ratelimit"]
    assert direction == "outbound"
    assert host == f"ratelimit.{service['metadata']['namespace']}.svc.cluster.local"
    assert int(port) in {p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc"}
    [vhost] = found["rate-limit-descriptors"]["spec"]["configPatches"]
    assert vhost["match"]["routeConfiguration"]["vhost"]["name"] == f"{edge.api_hostname}:443"
    assert edge.api_hostname in objects(stack_run, "VirtualService")["edge-api"]["spec"]["hosts"]


def test_the_limiter_runs_restricted_on_the_stacks_redis(stack_run: StackRun) -> None:
    deployment = objects(stack_run, "Deployment")["ratelimit"]
    assert deployment["spec"]["replicas"] == settings_of(stack_run).addons.rate_limiter.replicas
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].startswith("docker.io/envoyproxy/ratelimit:")
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 65534
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"]
    env = {e["name"]: e for e in container["env"]}
    assert env["REDIS_TLS"]["value"] == "true"
    assert env["REDIS_URL"]["value"].endswith(".cache.amazonaws.com:6379")
    secret = env["REDIS_AUTH"]["valueFrom"]["secretKeyRef"]
    external = objects(stack_run, "ExternalSecret")[secret["name"]]
    assert external["metadata"]["namespace"] == deployment["metadata"]["namespace"]
    assert secret["key"] in {d["secretKey"] for d in external["spec"]["data"]}
    budgets = objects(stack_run, "PodDisruptionBudget")
    assert ("ratelimit" in budgets) == (deployment["spec"]["replicas"] > 1)


@pytest.mark.parametrize(
    ("edge", "expected"),
    [
        (
            {"rateLimits": {"requestsPerMinutePerIp": 500}},
            "edge.rateLimits.requestsPerMinutePerIp: over 5 minutes it allows more than the web "
            "ACL's 2000, which would then block first (allowed: at most 400)",
        ),
        (
            {"rateLimits": {"requestsPerMinutePerUser": 0}},
            "edge.rateLimits.requestsPerMinutePerUser:",
        ),
        # Any string is an issuer (RFC 7519), but not one with spaces or an empty one.
        ({"userTokens": {"issuer": "api example"}}, "edge.userTokens.issuer:"),
        ({"userTokens": None}, "edge.userTokens: is empty (null): "),
    ],
)
def test_bad_rate_limit_settings_fail_with_one_line(edge: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values("production", deep_merge(BASE, {"edge": edge}))
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message, message
