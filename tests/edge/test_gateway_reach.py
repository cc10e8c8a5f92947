"""Who reaches the ingress gateway, what its health check proves, and where its token keys
come from (issue 21, items 5, 8, 9 and 10), each from the upstream behaviour it relies on.

- Istio 1.30.3 AuthorizationPolicy (pilot/pkg/security/authz/model/generator.go): `ipBlocks`
  is the connection's own peer (`direct_remote_ip`), `remoteIpBlocks` the client as found
  through the trusted proxies of X-Forwarded-For (`remote_ip`, the gateway trusts one: the
  ALB); `hosts` is an exact, case-blind match of the Host header (matcher/header.go
  `HostMatcher`), `host:*` its forms with a port; a DENY policy denies when any rule matches.
- aws-load-balancer-controller v3.5.0: health check annotations (docs/guide/ingress/
  annotations.md: `healthcheck-port` default `traffic-port`, protocol HTTP or HTTPS); the
  pod readiness gate's webhook selects namespaces labelled
  `elbv2.k8s.aws/pod-readiness-gate-inject: enabled` (helm/.../templates/webhook.yaml,
  docs/deploy/pod_readiness_gate.md), for target type ip.
- Istio 1.30.3 JWKS: PILOT_JWT_ENABLE_REMOTE_JWKS (pilot/pkg/features/pilot.go: istiod/false,
  hybrid/true, envoy); in hybrid mode a jwksUri whose host and port are a mesh service's is
  fetched by the proxy through that service's cluster (pilot/pkg/security/authn/
  policy_applier.go, model.LookupCluster, which reads the service registry), else by istiod;
  istiod itself has no sidecar, so it could not pass user-service's STRICT mTLS. The proxy has
  that cluster only while PILOT_FILTER_GATEWAY_CLUSTER_CONFIG stays false (pilot/pkg/features/
  experimental.go: default false; true sends a gateway only the clusters its routes name,
  pilot/pkg/networking/core/cluster.go).
- Envoy's jwt_authn filter counts each failed key fetch (`jwks_fetch_failed`, stats.h;
  authenticator.cc `onJwksError`, which fails the request with JwksFetchFail); Istio keeps
  none of jwt_authn's statistics unless a proxy config's proxyStatsMatcher includes them
  (pkg/bootstrap/config.go getStatsOptions; pilot/cmd/pilot-agent/config/config.go applies the
  pod's proxy.istio.io/config annotation).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from components.edge.routes import HEALTH_PATH
from offline.engine import StackRun
from tests.conftest import run_with
from tests.lookup import app_objects, helm_release, objects
from tests.test_settings import error_of

GATEWAY_LABELS = {"istio": "ingressgateway"}


def settings_of(run: StackRun) -> Any:
    return run.namespace["settings"]


def public_subnets(run: StackRun) -> list[str]:
    """Where an internet-facing ALB's nodes are: the subnets tagged for it."""
    return [
        s.inputs["cidrBlock"]
        for s in run.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"].get("kubernetes.io/role/elb") == "1"
    ]


def gateway_policies(run: StackRun) -> list[dict[str, Any]]:
    return [
        p["spec"]
        for p in objects(run, "AuthorizationPolicy").values()
        if p["metadata"]["namespace"] == "istio-ingress"
    ]


def _in(address: str, blocks: list[str]) -> bool:
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(b) for b in blocks)


def _host_matches(patterns: list[str], host: str) -> bool:
    host = host.lower()
    for pattern in patterns:
        if pattern.endswith("*"):
            if host.startswith(pattern[:-1].lower()):
                return True
        elif host == pattern.lower():
            return True
    return False


def denied(
    policies: list[dict[str, Any]], *, peer: str, client: str, host: str, headers: set[str]
) -> bool:
    """Whether the gateway's DENY policies refuse a request (the parts of Istio's rule
    semantics these policies use: source ip blocks, remote ip blocks, hosts, header presence)."""
    for policy in policies:
        assert policy["action"] == "DENY" and policy["selector"]["matchLabels"] == GATEWAY_LABELS
        for rule in policy["rules"]:
            matched = True
            for source in (f["source"] for f in rule.get("from", [])):
                if "notIpBlocks" in source:
                    matched &= not _in(peer, source["notIpBlocks"])
                if "notRemoteIpBlocks" in source:
                    matched &= not _in(client, source["notRemoteIpBlocks"])
            for operation in (t["operation"] for t in rule.get("to", [])):
                matched &= _host_matches(operation["hosts"], host)
            for condition in rule.get("when", []):
                header = condition["key"].removeprefix("request.headers[").removesuffix("]")
                assert condition["notValues"] == ["*"], condition
                matched &= header not in headers
            if matched:
                return True
    return False


def test_only_the_load_balancer_reaches_the_gateway(stack_run: StackRun) -> None:
    """Item 5: a pod that sends `Host: prometheus.<domain>` straight to the gateway skips the
    web ACL, the rate limits and the sign-in; the gateway refuses it by its address."""
    edge = settings_of(stack_run).edge
    policies = gateway_policies(stack_run)
    alb_node = str(ipaddress.ip_network(public_subnets(stack_run)[0]).network_address + 20)
    pod = str(ipaddress.ip_network(stack_run.namespace["settings"].vpc_cidr).network_address + 99)
    allowed_client = "203.0.113.5"
    signed_in = {"x-amzn-oidc-data"}
    for host in (edge.api_hostname, *edge.operator_hosts().values()):
        # Straight from a pod (any header it likes): refused.
        assert denied(policies, peer=pod, client=pod, host=host, headers=signed_in), host
        # Through the ALB, with what the ALB guarantees: served.
        assert not denied(
            policies, peer=alb_node, client=allowed_client, host=host, headers=signed_in
        ), host
    # The health check comes from the ALB's nodes too.
    assert not denied(policies, peer=alb_node, client=alb_node, host=alb_node, headers=set())


def test_the_operator_hosts_are_guarded_at_the_gateway_as_at_the_alb(stack_run: StackRun) -> None:
    edge = settings_of(stack_run).edge
    policies = gateway_policies(stack_run)
    alb_node = str(ipaddress.ip_network(public_subnets(stack_run)[0]).network_address + 20)
    stranger = "198.18.0.1"
    access = edge.operator_access
    for host in edge.operator_hosts().values():
        for form in (host, f"{host}:443", host.upper()):
            if access.allowed_cidrs:
                # Staging: the web ACL's allow-list, again at the gateway.
                assert denied(policies, peer=alb_node, client=stranger, host=form, headers=set())
                inside = str(ipaddress.ip_network(access.allowed_cidrs[0]).network_address + 1)
                assert not denied(policies, peer=alb_node, client=inside, host=form, headers=set())
            else:
                # Production: a request the ALB did not sign in carries no x-amzn-oidc-data.
                assert denied(policies, peer=alb_node, client=stranger, host=form, headers=set())
                assert not denied(
                    policies,
                    peer=alb_node,
                    client=stranger,
                    host=form,
                    headers={"x-amzn-oidc-data"},
                )
    # The API host is the public's: no allow-list or sign-in there.
    assert not denied(
        policies, peer=alb_node, client=stranger, host=edge.api_hostname, headers=set()
    )
    # The client address is the one the ALB appends: the gateway trusts exactly one proxy.
    values = helm_release(stack_run, "gateway").inputs["values"]
    assert '"numTrustedProxies": 1' in values["podAnnotations"]["proxy.istio.io/config"]


def test_the_health_check_proves_tls_and_routing(stack_run: StackRun) -> None:
    """Item 10: the status port (plain HTTP /healthz/ready) is green before the gateway has
    its certificate, Istio loading credentialName secrets without blocking the listener
    (pilot/pkg/security/model/authentication.go `SDSAdsConfig`); the ALB checks the traffic
    port over HTTPS instead, for a path only the gateway's own route answers. That proves a
    TLS handshake and istiod's routes, not the certificate: the ALB validates none (Elastic
    Load Balancing User Guide, target groups: "The load balancer does not validate these
    certificates")."""
    for ingress in objects(stack_run, "Ingress").values():
        annotations = ingress["metadata"]["annotations"]
        assert annotations["alb.ingress.kubernetes.io/healthcheck-protocol"] == "HTTPS"
        assert annotations["alb.ingress.kubernetes.io/healthcheck-port"] == "traffic-port"
        assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == HEALTH_PATH
        assert annotations["alb.ingress.kubernetes.io/success-codes"] == "200"
        assert annotations["alb.ingress.kubernetes.io/backend-protocol"] == "HTTPS"
    [gateway] = objects(stack_run, "Gateway").values()
    [server] = gateway["spec"]["servers"]
    # The traffic port terminates TLS with the certificate, for any name (the ALB sends none).
    assert server["port"]["number"] == 443 and server["tls"]["mode"] == "SIMPLE"
    assert server["hosts"] == ["*"]
    health = objects(stack_run, "VirtualService")["edge-health"]["spec"]
    # Any Host (the check sets none of ours): a route on "*", answered by the gateway itself.
    assert health["hosts"] == ["*"] and health["gateways"] == ["edge"]
    assert health["http"] == [
        {
            "match": [{"uri": {"exact": HEALTH_PATH}}],
            "directResponse": {"status": 200, "body": {"string": "ok"}},
        }
    ]
    # No other route answers the path on a host of ours with something else first.
    for name, vs in objects(stack_run, "VirtualService").items():
        if vs["spec"].get("gateways") == ["edge"] and name != "edge-health":
            assert "*" not in vs["spec"]["hosts"], name


def test_alb_targets_get_pod_readiness_gates(stack_run: StackRun) -> None:
    """Item 8: IP targets need the namespace label, or a rollout or a drain can leave the
    target group with no healthy target (502s)."""
    namespace = objects(stack_run, "Namespace")["istio-ingress"]
    assert namespace["metadata"]["labels"]["elbv2.k8s.aws/pod-readiness-gate-inject"] == "enabled"
    for ingress in objects(stack_run, "Ingress").values():
        assert ingress["metadata"]["namespace"] == "istio-ingress"
        assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    # The webhook keeps its default namespace selector (the label above).
    controller = helm_release(stack_run, "aws-load-balancer-controller").inputs["values"]
    assert not controller.get("webhookNamespaceSelectors")


def test_the_token_keys_come_from_user_service_inside_the_mesh(stack_run: StackRun) -> None:
    """Item 9: during a first `up` or an API outage the public edge cannot serve the keys,
    and every request with a token would then get a 401."""
    check_token_keys(stack_run, "user-service")


def check_token_keys(run: StackRun, keys_service: str) -> None:
    settings = settings_of(run)
    namespace = settings.application.namespace
    env = helm_release(run, "istiod").inputs["values"]["env"]
    assert env["PILOT_JWT_ENABLE_REMOTE_JWKS"] == "hybrid"
    # Stated, not left to the default: the fetch needs the service's cluster on the gateway.
    assert env["PILOT_FILTER_GATEWAY_CLUSTER_CONFIG"] == "false"
    [auth] = objects(run, "RequestAuthentication").values()
    [rule] = auth["spec"]["jwtRules"]
    uri = urlsplit(rule["jwksUri"])
    tokens = settings.edge.user_tokens
    assert tokens.jwks_service == keys_service
    # A mesh service's host and port: the proxy fetches through its cluster, in mTLS.
    services = app_objects(run, "Service")
    issuer = services[keys_service]
    assert uri.scheme == "http"
    assert uri.hostname == f"{keys_service}.{namespace}.svc.cluster.local"
    assert uri.port in {p["port"] for p in issuer["spec"]["ports"]}
    assert uri.path == tokens.jwks_path
    assert uri.hostname != urlsplit(rule["issuer"]).hostname
    # user-service admits the gateway for that path only, over mTLS...
    gateway_account = "cluster.local/ns/istio-ingress/sa/istio-ingressgateway"
    values = helm_release(run, "gateway").inputs["values"]
    # (the gateway chart's service account is the release's name unless values name one)
    assert not values.get("serviceAccount", {}).get("name")
    policies = app_objects(run, "AuthorizationPolicy")
    policy = policies[keys_service]["spec"]
    assert {
        "from": [{"source": {"principals": [gateway_account]}}],
        "to": [
            {
                "operation": {
                    "methods": ["GET"],
                    "paths": [uri.path],
                    "ports": [str(uri.port)],
                }
            }
        ],
    } in policy["rules"]
    # ...and no other service does.
    for name, other in policies.items():
        if name != keys_service:
            assert all(
                r.get("from") != [{"source": {"principals": [gateway_account]}}]
                for r in other["spec"].get("rules", [])
            ), name
    mtls = app_objects(run, "PeerAuthentication")[keys_service]["spec"]
    assert mtls["mtls"] == {"mode": "STRICT"}
    # ...and its network policy lets the gateway's pods in on that port.
    ingress = app_objects(run, "NetworkPolicy")[f"{keys_service}-ingress"]["spec"]["ingress"]
    assert any(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-ingress"}}}
        in r["from"]
        and {"port": uri.port, "protocol": "TCP"} in r["ports"]
        for r in ingress
    )
    # The gateway's proxy keeps the failed-fetch counter the alert reads.
    config = json.loads(values["podAnnotations"]["proxy.istio.io/config"])
    assert "jwt_authn.jwks_fetch_failed" in config["proxyStatsMatcher"]["inclusionSuffixes"]


def test_the_token_keys_service_is_a_setting_that_moves_every_piece() -> None:
    """Finding 2 of the review: the keys' service, port and path are the stack's settings (the
    contract in stacks/edge_settings.py UserTokens), not fixed values: naming another service
    moves the URI, its authorization rule and its network policy with it."""
    run = run_with("staging", edge={"userTokens": {"jwksService": "document-service"}})
    check_token_keys(run, "document-service")


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        (
            {"jwksPort": 9000},
            "edge.userTokens.jwksPort: user-service serves on port 8002 only",
        ),
        ({"jwksService": "payments-service"}, "edge.userTokens.jwksService: 'payments-service'"),
        ({"jwksPath": "jwks.json"}, "edge.userTokens.jwksPath:"),
    ],
)
def test_a_token_keys_setting_that_cannot_work_is_refused(
    tokens: dict[str, Any], message: str
) -> None:
    found = error_of(edge={"userTokens": tokens})
    assert found.startswith(message), found
    assert "\n" not in found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_only_the_edge_s_load_balancer_and_nat_have_addresses_in_the_public_subnets(
    stack_run: StackRun,
) -> None:
    """Finding 6 of the review: the gateway admits any address of the public subnets (its
    namespace policy and `edge-only-from-load-balancer`). That holds only while those subnets
    hold nothing but the edge's ALB nodes and the NAT gateways (which only carry connections
    out). Guard it: no resource of the program but a NAT gateway (and the subnets' route table
    associations) names a public subnet; no Service asks the load balancer controller for a
    load balancer of its own; every Ingress joins the edge's IngressGroup (one ALB, behind the
    web ACL)."""
    public = {
        s.id
        for s in stack_run.of_type("aws:ec2/subnet:Subnet")
        if s.inputs["tags"].get("kubernetes.io/role/elb") == "1"
    }
    assert len(public) == len(settings_of(stack_run).availability_zones)
    placed = {
        r.type
        for r in stack_run.resources
        if r.id not in public and public & set(_strings(r.inputs))
    }
    assert placed == {
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTableAssociation:RouteTableAssociation",
    }
    for name, service in objects(stack_run, "Service").items():
        assert service["spec"].get("type", "ClusterIP") != "LoadBalancer", name
    groups = {
        ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/group.name"]
        for ingress in objects(stack_run, "Ingress").values()
    }
    assert len(groups) == 1
