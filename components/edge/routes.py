"""The edge inside the cluster: the ALB's Ingresses, the gateway's certificate, its Gateway and
the routes from each public host to its service. All in the ingress gateway's namespace.

A request's path: client -> AWS WAF (web ACL on the ALB) -> ALB (TLS with the ACM certificate,
HTTP redirected to HTTPS, HSTS added, operators signed in) -> the gateway pods over TLS again
(cert-manager's certificate) -> the service's sidecar (mTLS) -> the service.

The ALB does not send SNI when it connects to its targets (istio/istio#31421), so the Gateway's
HTTPS server takes any name (`*`) and the VirtualServices pick routes by the Host header. Both
Ingresses join one IngressGroup, so one ALB serves every host; the group-wide annotations (WAF,
certificate, TLS policy, attributes) are the same on both, as the controller requires.

The ALB's health check asks each gateway pod over HTTPS on the traffic port for a path the
gateway itself answers: it proves what the ALB's traffic needs, a pod whose HTTPS listener
completes a TLS handshake and routes with istiod's configuration. It does not prove which
certificate: the ALB validates no target certificate ("The load balancer does not validate
these certificates", Elastic Load Balancing User Guide, target groups for Application Load
Balancers), so a wrong or expired one passes too; the public certificate clients see is ACM's,
at the ALB. (The status port's /healthz/ready, plain HTTP, is green before the pod has any
certificate: Istio loads a credentialName's secret without blocking the listener,
pilot/pkg/security/model/authentication.go `SDSAdsConfig`.) With the pod readiness gate (the
gateway namespace's label), a pod is Ready only once that check passes.

Only the ALB reaches the gateway: its namespace admits 443 from the load balancer's subnets
only (components/security/layer.py), and the gateway itself refuses any request whose direct
peer is elsewhere (an AuthorizationPolicy on the connection's address, not on a header). This
rests on the public subnets holding nothing but the edge's ALB nodes and the NAT gateways
(which carry connections out only): no resource of the program is placed there, no Service
asks for a load balancer of its own and every Ingress joins the one IngressGroup
(tests/edge/test_gateway_reach.py). The
operator hosts are refused at the gateway too without what the ALB guarantees: with an
allow-list, a client address (the one X-Forwarded-For entry the ALB appends) inside it; with
the sign-in, the ALB's `x-amzn-oidc-data` header, which catches a rule that lost its sign-in
but not a header forged through such a rule: the ALB's rule stays the control.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.addons.external_secrets import external_secret
from components.addons.load_balancer_controller import EDGE_NAMESPACE, LoadBalancerController
from components.addons.mesh import GATEWAY_HTTPS_PORT, GATEWAY_RELEASE, GATEWAY_SELECTOR
from components.data.secrets import RemoteSecret
from components.mesh.traffic import NETWORKING_API, route_policies
from components.shared.conventions import standard_labels
from components.shared.custom_resources import labelled_custom_resource
from stacks.edge_settings import OidcLogin
from stacks.secrets import OPERATOR_SSO
from stacks.traffic_settings import TrafficClass

ALB = "alb.ingress.kubernetes.io"
GATEWAY_NAME = "edge"
CERTIFICATE_SECRET = "edge-tls"
# What the gateway answers the ALB's health check with, on any host (the check names none).
HEALTH_PATH = "/healthz/edge"
# The header the ALB adds to a request it has signed in (Elastic Load Balancing User Guide,
# "Authenticate users using an Application Load Balancer", user claims encoding).
ALB_SIGN_IN_HEADER = "x-amzn-oidc-data"
# TLS 1.3 and 1.2 only, with post-quantum key exchange: the policy AWS recommends for ALBs
# (Elastic Load Balancing User Guide, "Security policies for your Application Load Balancer").
SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"


@dataclass(frozen=True)
class Backend:
    """Where a host (or a path of it) goes: a Service's cluster-local name and port, and the
    traffic class the gateway calls it with (its timeout and retries), if it has one."""

    host: str
    port: int
    traffic: TrafficClass | None = None


@dataclass(frozen=True)
class EdgeRoutesArgs:
    namespace: str
    # The IngressGroup: one ALB for the stack.
    group: str
    api_host: str
    # Path prefix -> backend on the API host ("/" last: the longest prefix wins).
    api_paths: Mapping[str, Backend]
    # Operator host -> backend.
    operator_hosts: Mapping[str, Backend]
    # Sign-in for the operator hosts (None: they are behind the web ACL's allow-list).
    operator_login: OidcLogin | None
    # The Secrets Manager secret holding the sign-in's client ID and secret (with
    # operator_login), which an ExternalSecret turns into the Secret the controller reads.
    operator_login_secret: RemoteSecret | None
    secret_store: str
    issuer: str
    certificate_arn: pulumi.Input[str]
    web_acl_arn: pulumi.Input[str]
    shield_advanced: bool
    hsts_max_age_seconds: int
    # The ALB refuses deletion while this is on (production).
    deletion_protection: bool
    # The load balancer's subnets (the public ones), the only addresses the gateway admits.
    load_balancer_cidrs: Sequence[str] = ()
    # Who may open the operator hosts, where an allow-list guards them (empty: a sign-in).
    operator_allowed_cidrs: Sequence[str] = ()

    @property
    def hosts(self) -> list[str]:
        return [self.api_host, *self.operator_hosts]


def group_annotations(args: EdgeRoutesArgs) -> dict[str, pulumi.Input[str]]:
    """What every Ingress of the group states alike: the ALB and its listeners."""
    attributes = [
        f"deletion_protection.enabled={str(args.deletion_protection).lower()}",
        # Requests with header names that are not valid HTTP are dropped, not passed on
        # (request smuggling through a lenient backend).
        "routing.http.drop_invalid_header_fields.enabled=true",
    ]
    return {
        f"{ALB}/group.name": args.group,
        f"{ALB}/scheme": "internet-facing",
        f"{ALB}/target-type": "ip",
        f"{ALB}/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
        f"{ALB}/ssl-redirect": "443",
        f"{ALB}/certificate-arn": args.certificate_arn,
        f"{ALB}/ssl-policy": SSL_POLICY,
        f"{ALB}/wafv2-acl-arn": args.web_acl_arn,
        f"{ALB}/shield-advanced-protection": str(args.shield_advanced).lower(),
        f"{ALB}/load-balancer-attributes": ",".join(attributes),
        # HSTS on every HTTPS response (an ALB listener attribute since controller v2.10.1).
        f"{ALB}/listener-attributes.HTTPS-443": (
            "routing.http.response.strict_transport_security.header_value="
            f"max-age={args.hsts_max_age_seconds}; includeSubDomains"
        ),
        # To the gateway over TLS, and its health check the same way (see the docstring).
        f"{ALB}/backend-protocol": "HTTPS",
        f"{ALB}/healthcheck-protocol": "HTTPS",
        f"{ALB}/healthcheck-port": "traffic-port",
        f"{ALB}/healthcheck-path": HEALTH_PATH,
        f"{ALB}/success-codes": "200",
    }


def login_annotations(login: OidcLogin, secret: str) -> dict[str, str]:
    """ALB OIDC sign-in on this Ingress's rules only (HTTPS listener)."""
    return {
        f"{ALB}/auth-type": "oidc",
        f"{ALB}/auth-idp-oidc": json.dumps(
            {
                "issuer": login.issuer,
                "authorizationEndpoint": login.authorization_endpoint,
                "tokenEndpoint": login.token_endpoint,
                "userInfoEndpoint": login.user_info_endpoint,
                "secretName": secret,
            },
            sort_keys=True,
        ),
        f"{ALB}/auth-on-unauthenticated-request": "authenticate",
        f"{ALB}/auth-scope": "openid email",
        # Eight hours: a working day, then sign in again.
        f"{ALB}/auth-session-timeout": "28800",
    }


def http_routes(backend: Backend, prefix: str | None = None) -> list[dict[str, Any]]:
    """The routes of a host (or of a path prefix of it) to its backend: with the backend's
    traffic class, its retry routes (by method) and timeout, as its callers in the mesh have
    them; Istio's defaults otherwise."""
    destination = [{"destination": {"host": backend.host, "port": {"number": backend.port}}}]
    uri = {"uri": {"prefix": prefix}} if prefix not in (None, "/") else {}
    policies = route_policies(backend.traffic) if backend.traffic is not None else [{}]
    routes = []
    for policy in policies:
        route = {key: value for key, value in policy.items() if key != "match"}
        # The conditions of one match all apply: the path prefix and the policy's methods.
        conditions = [{**uri, **method} for method in policy.get("match", [{}])]
        if conditions != [{}]:
            route["match"] = conditions
        route["route"] = destination
        routes.append(route)
    return routes


class EdgeRoutes(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        args: EdgeRoutesArgs,
        opts: pulumi.ResourceOptions | None = None,
        *,
        # What every object waits for: the gateway and cert-manager (their kinds and pods).
        after: Sequence[pulumi.Resource],
        # What the Ingresses also wait for: the load balancer controller (which must outlive
        # them: it deletes the ALB when they go).
        ingress_after: Sequence[pulumi.Resource] = (),
        # What the sign-in's ExternalSecret also waits for: External Secrets.
        secrets_after: Sequence[pulumi.Resource] = (),
    ) -> None:
        super().__init__("financial-planning:edge:EdgeRoutes", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(after))
        ns = args.namespace
        labelled_custom_resource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            name=CERTIFICATE_SECRET,
            namespace=ns,
            component="edge",
            spec={
                "secretName": CERTIFICATE_SECRET,
                "dnsNames": args.hosts,
                "issuerRef": {
                    "group": "cert-manager.io",
                    "kind": "ClusterIssuer",
                    "name": args.issuer,
                },
                "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
            },
            opts=child,
        )
        labelled_custom_resource(
            f"{name}-gateway",
            api_version=NETWORKING_API,
            kind="Gateway",
            name=GATEWAY_NAME,
            namespace=ns,
            component="edge",
            spec={
                "selector": GATEWAY_SELECTOR,
                "servers": [
                    {
                        "port": {
                            "number": GATEWAY_HTTPS_PORT,
                            "name": "https",
                            "protocol": "HTTPS",
                        },
                        # Any name: the ALB connects without SNI (see the module's docstring).
                        "hosts": ["*"],
                        "tls": {
                            "mode": "SIMPLE",
                            "credentialName": CERTIFICATE_SECRET,
                            "minProtocolVersion": "TLSV1_2",
                        },
                    }
                ],
            },
            opts=child,
        )
        self._virtual_service(
            f"{name}-api",
            "api",
            args.api_host,
            [r for prefix, backend in args.api_paths.items() for r in http_routes(backend, prefix)],
            ns,
            child,
        )
        for host, backend in args.operator_hosts.items():
            label = host.split(".", 1)[0]
            self._virtual_service(f"{name}-{label}", label, host, http_routes(backend), ns, child)
        self._virtual_service(
            f"{name}-health",
            "health",
            "*",
            [
                {
                    "match": [{"uri": {"exact": HEALTH_PATH}}],
                    "directResponse": {"status": 200, "body": {"string": "ok"}},
                }
            ],
            ns,
            child,
        )
        self._gateway_policies(name, args, child)

        ingress_after = [*after, *ingress_after]
        login: dict[str, str] = {}
        if args.operator_hosts and args.operator_login is not None:
            if args.operator_login_secret is None:
                raise ValueError("an operator sign-in needs its client's secret")
            ingress_after.append(
                external_secret(
                    OPERATOR_SSO,
                    args.operator_login_secret,
                    namespace_name=ns,
                    store_name=args.secret_store,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[*after, *secrets_after]),
                )
            )
            login = login_annotations(args.operator_login, OPERATOR_SSO)
            self._secret_reader(name, OPERATOR_SSO, ns, child)
        ingress_opts = pulumi.ResourceOptions(parent=self, depends_on=ingress_after)
        self._ingress(f"{name}-public", "edge-public", [args.api_host], {}, args, ingress_opts)
        if args.operator_hosts:
            self._ingress(
                f"{name}-operators",
                "edge-operators",
                list(args.operator_hosts),
                login,
                args,
                ingress_opts,
            )
        self.register_outputs({})

    def _gateway_policies(
        self, name: str, args: EdgeRoutesArgs, opts: pulumi.ResourceOptions
    ) -> None:
        """What the gateway refuses itself, beside its namespace's network policy."""
        policies: list[tuple[str, list[dict[str, Any]]]] = []
        if args.load_balancer_cidrs:
            # `ipBlocks` is the connection's own peer (Istio pilot/pkg/security/authz/model/
            # generator.go: direct_remote_ip), which no header changes.
            policies.append(
                (
                    "edge-only-from-load-balancer",
                    [{"from": [{"source": {"notIpBlocks": list(args.load_balancer_cidrs)}}]}],
                )
            )
        if args.operator_hosts:
            # A host matches the Host header exactly: its `host:port` forms as well.
            to = [{"operation": {"hosts": [f for h in args.operator_hosts for f in (h, f"{h}:*")]}}]
            if args.operator_allowed_cidrs:
                # `remoteIpBlocks`: the client as the one trusted proxy (the ALB) saw it.
                source = {"notRemoteIpBlocks": list(args.operator_allowed_cidrs)}
                policies.append(
                    ("edge-operators-allow-list", [{"from": [{"source": source}], "to": to}])
                )
            elif args.operator_login is not None:
                absent = {"key": f"request.headers[{ALB_SIGN_IN_HEADER}]", "notValues": ["*"]}
                policies.append(("edge-operators-signed-in", [{"to": to, "when": [absent]}]))
        for policy_name, rules in policies:
            labelled_custom_resource(
                f"{name}-{policy_name}",
                api_version="security.istio.io/v1",
                kind="AuthorizationPolicy",
                name=policy_name,
                namespace=args.namespace,
                component="edge",
                spec={
                    "selector": {"matchLabels": GATEWAY_SELECTOR},
                    "action": "DENY",
                    "rules": rules,
                },
                opts=opts,
            )

    def _virtual_service(
        self,
        resource_name: str,
        label: str,
        host: str,
        http: list[dict[str, Any]],
        namespace: str,
        opts: pulumi.ResourceOptions,
    ) -> None:
        labelled_custom_resource(
            resource_name,
            api_version=NETWORKING_API,
            kind="VirtualService",
            name=f"edge-{label}",
            namespace=namespace,
            component="edge",
            spec={"hosts": [host], "gateways": [GATEWAY_NAME], "http": http},
            opts=opts,
        )

    def _ingress(
        self,
        resource_name: str,
        name: str,
        hosts: list[str],
        extra: Mapping[str, str],
        args: EdgeRoutesArgs,
        opts: pulumi.ResourceOptions,
    ) -> None:
        backend = k8s.networking.v1.IngressBackendArgs(
            service=k8s.networking.v1.IngressServiceBackendArgs(
                name=GATEWAY_RELEASE,
                port=k8s.networking.v1.ServiceBackendPortArgs(number=GATEWAY_HTTPS_PORT),
            )
        )
        k8s.networking.v1.Ingress(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=name,
                namespace=args.namespace,
                labels=standard_labels(name, "edge"),
                annotations={**group_annotations(args), **extra},
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name="alb",
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=host,
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path="/", path_type="Prefix", backend=backend
                                )
                            ]
                        ),
                    )
                    for host in hosts
                ],
            ),
            opts=opts,
        )

    def _secret_reader(
        self, name: str, secret: str, namespace: str, opts: pulumi.ResourceOptions
    ) -> None:
        """The load balancer controller may read this one Secret (its chart grants none)."""
        role = k8s.rbac.v1.Role(
            f"{name}-sign-in-reader",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="alb-sign-in-reader",
                namespace=namespace,
                labels=standard_labels("alb-sign-in-reader", "edge"),
            ),
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""],
                    resources=["secrets"],
                    resource_names=[secret],
                    verbs=["get", "list", "watch"],
                )
            ],
            opts=opts,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-sign-in-reader",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="alb-sign-in-reader",
                namespace=namespace,
                labels=standard_labels("alb-sign-in-reader", "edge"),
            ),
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role.metadata.name
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount",
                    name=LoadBalancerController.service_account,
                    namespace=EDGE_NAMESPACE,
                )
            ],
            opts=opts,
        )
