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
  policy_applier.go, model.LookupCluster), else by istiod; istiod itself has no sidecar, so
  it could not pass user-service's STRICT mTLS.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from components.edge.routes import HEALTH_PATH
from offline.engine import StackRun
from tests.lookup import app_objects, helm_release, objects

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
    port over HTTPS instead, for a path only the gateway's own route answers."""
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
    settings = settings_of(stack_run)
    namespace = settings.application.namespace
    env = helm_release(stack_run, "istiod").inputs["values"]["env"]
    assert env["PILOT_JWT_ENABLE_REMOTE_JWKS"] == "hybrid"
    [auth] = objects(stack_run, "RequestAuthentication").values()
    [rule] = auth["spec"]["jwtRules"]
    uri = urlsplit(rule["jwksUri"])
    # A mesh service's host and port: the proxy fetches through its cluster, in mTLS.
    services = app_objects(stack_run, "Service")
    issuer = services["user-service"]
    assert uri.scheme == "http" and uri.hostname == f"user-service.{namespace}.svc.cluster.local"
    assert uri.port in {p["port"] for p in issuer["spec"]["ports"]}
    assert uri.hostname != urlsplit(rule["issuer"]).hostname
    # user-service admits the gateway for that path only, over mTLS...
    gateway_account = "cluster.local/ns/istio-ingress/sa/istio-ingressgateway"
    values = helm_release(stack_run, "gateway").inputs["values"]
    # (the gateway chart's service account is the release's name unless values name one)
    assert not values.get("serviceAccount", {}).get("name")
    policy = app_objects(stack_run, "AuthorizationPolicy")["user-service"]["spec"]
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
    mtls = app_objects(stack_run, "PeerAuthentication")["user-service"]["spec"]
    assert mtls["mtls"] == {"mode": "STRICT"}
    # ...and its network policy lets the gateway's pods in on that port.
    ingress = app_objects(stack_run, "NetworkPolicy")["user-service-ingress"]["spec"]["ingress"]
    assert any(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "istio-ingress"}}}
        in r["from"]
        and {"port": uri.port, "protocol": "TCP"} in r["ports"]
        for r in ingress
    )
