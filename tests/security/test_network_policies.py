"""Micro-segmentation: enforced by the VPC CNI, default deny, each service reachable only from
its callers and reaching only what it uses."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from components.foundation.network import control_plane_layout, subnet_layout
from offline.engine import StackRun
from offline.synth import kubernetes_objects
from tests.conftest import run_with
from tests.lookup import app_namespace, objects

PRIVATE_SUBNETS = {
    "production": ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"],
    "staging": ["10.1.0.0/18", "10.1.64.0/18", "10.1.128.0/18"],
}
VPC = {"production": "10.0.0.0/16", "staging": "10.1.0.0/16"}
NAME_LABEL = "kubernetes.io/metadata.name"


def admitted_ranges(run: StackRun) -> tuple[list[str], list[str]]:
    """The control plane's subnets (the cluster's) and the load balancer's (the public ones,
    where the controller places an internet-facing ALB by their `kubernetes.io/role/elb`)."""
    subnets = {s.id: s.inputs for s in run.of_type("aws:ec2/subnet:Subnet")}
    cluster = run.one("aws:eks/cluster:Cluster").inputs["vpcConfig"]["subnetIds"]
    control_plane = [subnets[i]["cidrBlock"] for i in cluster]
    public = [s["cidrBlock"] for s in subnets.values() if "kubernetes.io/role/elb" in s["tags"]]
    return control_plane, public


def blocks(cidrs: list[str]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": c}} for c in cidrs]


def app_policies(run: StackRun) -> dict[str, dict[str, Any]]:
    namespace = app_namespace(run)
    return {
        name: p["spec"]
        for name, p in objects(run, "NetworkPolicy").items()
        if p["metadata"]["namespace"] == namespace
    }


def test_the_vpc_cni_enforces_network_policies(stack_run: StackRun) -> None:
    [cni] = [
        a for a in stack_run.of_type("aws:eks/addon:Addon") if a.inputs["addonName"] == "vpc-cni"
    ]
    assert json.loads(cni.inputs["configurationValues"]) == {"enableNetworkPolicy": "true"}


def test_the_application_namespace_denies_everything_by_default(stack_run: StackRun) -> None:
    policies = app_policies(stack_run)
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    [dns] = policies["allow-dns"]["egress"]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert dns["to"][0]["podSelector"] == {"matchLabels": {"k8s-app": "kube-dns"}}
    # Nothing else may open the whole namespace.
    assert sorted(n for n, p in policies.items() if p["podSelector"] == {}) == [
        "allow-dns",
        "default-deny",
    ]


def callers_of(run: StackRun, service: str) -> set[str]:
    [rule] = [
        r
        for r in app_policies(run)[f"{service}-ingress"]["ingress"]
        if any("podSelector" in peer for peer in r["from"])
    ] or [{"from": []}]
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for peer in rule["from"]
        if "podSelector" in peer
    }


@pytest.mark.parametrize(
    ("service", "callers"),
    [
        ("banking-service", {"financial-planning-api", "graphql-gateway"}),
        ("notification-service", {"financial-planning-api", "user-service", "banking-service"}),
        ("ml-service", {"financial-planning-api", "simulation-service"}),
        ("financial-planning-api", {"graphql-gateway"}),
        ("graphql-gateway", set()),
    ],
)
def test_each_service_accepts_only_its_callers(
    stack_run: StackRun, service: str, callers: set[str]
) -> None:
    assert callers_of(stack_run, service) == callers


def namespaces_admitted(run: StackRun, service: str) -> set[str]:
    return {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in app_policies(run)[f"{service}-ingress"]["ingress"]
        for peer in rule["from"]
        if "namespaceSelector" in peer
    }


def test_only_edge_services_and_the_token_issuer_admit_the_ingress_gateway(
    stack_run: StackRun,
) -> None:
    # user-service: the gateway's proxy fetches the token keys there (its authorization
    # policy narrows that to one path, components/security/mesh_policies.py).
    for service in ("financial-planning-api", "graphql-gateway", "user-service"):
        assert namespaces_admitted(stack_run, service) == {"istio-ingress", "monitoring"}
    for service in ("banking-service", "ml-service", "document-service"):
        assert namespaces_admitted(stack_run, service) == {"monitoring"}


def test_the_ranges_that_admit_the_api_server_and_the_alb_hold_no_pod(
    stack_run: StackRun,
) -> None:
    """Pods take addresses of their nodes' subnets (VPC CNI): "from the VPC" admits every pod.
    The control plane's and the load balancer's subnets hold no node, so no pod."""
    control_plane, load_balancer = admitted_ranges(stack_run)
    subnets = {s.id: s.inputs["cidrBlock"] for s in stack_run.of_type("aws:ec2/subnet:Subnet")}
    nodes = {
        ipaddress.IPv4Network(subnets[i])
        for group in stack_run.of_type("aws:eks/nodeGroup:NodeGroup")
        for i in group.inputs["subnetIds"]
    }
    assert nodes
    for cidr in control_plane + load_balancer:
        assert not any(ipaddress.IPv4Network(cidr).overlaps(n) for n in nodes), cidr
    # And no platform namespace admits the whole VPC any more.
    for policy in kubernetes_objects(stack_run):
        if policy["kind"] == "NetworkPolicy" and policy["metadata"]["name"] == "platform-default":
            for rule in policy["spec"].get("ingress", []):
                assert {"ipBlock": {"cidr": VPC[stack_run.stack]}} not in rule["from"]


def egress(run: StackRun, service: str) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = app_policies(run)[f"{service}-egress"]["egress"]
    return rules


def test_banking_reaches_its_callee_its_database_aws_and_plaid_only(stack_run: StackRun) -> None:
    stack = stack_run.stack
    rules = egress(stack_run, "banking-service")
    assert {
        "to": [
            {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "notification-service"}}}
        ],
        "ports": [{"port": 8005, "protocol": "TCP"}],
    } in rules
    assert {
        "to": [{"ipBlock": {"cidr": c}} for c in PRIVATE_SUBNETS[stack]],
        "ports": [{"port": 5432, "protocol": "TCP"}],
    } in rules
    assert {
        "to": [{"ipBlock": {"cidr": VPC[stack]}}],
        "ports": [{"port": 443, "protocol": "TCP"}],
    } in rules
    internet = [r for r in rules if r["to"][0].get("ipBlock", {}).get("cidr") == "0.0.0.0/0"]
    assert internet == [
        {
            "to": [
                {
                    "ipBlock": {
                        "cidr": "0.0.0.0/0",
                        "except": [
                            "10.0.0.0/8",
                            "172.16.0.0/12",
                            "192.168.0.0/16",
                            "169.254.0.0/16",
                        ],
                    }
                }
            ],
            "ports": [{"port": 443, "protocol": "TCP"}],
        }
    ]
    assert not any(p["port"] in (6379,) for r in rules for p in r["ports"])


def test_a_service_reaches_no_store_it_does_not_use(stack_run: StackRun) -> None:
    ports = {
        service: {p["port"] for r in egress(stack_run, service) for p in r["ports"]}
        for service in ("graphql-gateway", "ml-service", "document-service")
    }
    assert 5432 not in ports["graphql-gateway"] and 6379 in ports["graphql-gateway"]
    assert not {5432, 6379} & ports["ml-service"]
    # ml-service has no AWS role: no route to the VPC endpoints either.
    assert all(
        r["to"][0].get("ipBlock", {}).get("cidr") != VPC[stack_run.stack]
        for r in egress(stack_run, "ml-service")
    )
    assert 6379 not in ports["document-service"]


def test_platform_namespaces_deny_ingress_but_what_the_api_server_needs(
    stack_run: StackRun,
) -> None:
    platform = {
        p["metadata"]["namespace"]: p["spec"]
        for p in kubernetes_objects(stack_run)
        if p["kind"] == "NetworkPolicy" and p["metadata"]["name"] == "platform-default"
    }
    assert set(platform) == {
        "external-secrets-system",
        "autoscaling-system",
        "nvidia-device-plugin",
        "reloader",
        "database-bootstrap",
        "search-bootstrap",
        "monitoring",
        "node-exporter",
        "istio-system",
        "istio-cni",
        # The edge: its controllers, cert-manager, the ingress gateway.
        "edge-system",
        "cert-manager",
        "istio-ingress",
        # Fluent Bit's.
        "logging",
        # Jaeger's.
        "tracing",
    }
    monitoring = platform.pop("monitoring")
    # Prometheus scrapes these on their metrics ports, and nothing else of them.
    scraped = {
        "external-secrets-system": [8080],
        "autoscaling-system": [8085],
        "reloader": [9090],
        "istio-system": [15014],
        # The load balancer controller and external-dns.
        "edge-system": [8080, 7979],
        "cert-manager": [9402],
        # The gateway's Envoy statistics.
        "istio-ingress": [15090],
        "logging": [2020],
        # Jaeger's collector; Grafana also reads traces from its query API (16686).
        "tracing": [16686, 8888],
    }
    control_plane, load_balancer = admitted_ranges(stack_run)
    # What the API server calls (webhooks, aggregated APIs): from its own subnets only.
    from_the_control_plane = {
        "external-secrets-system": [10250],
        "autoscaling-system": [10250, 8000, 6443],
        "istio-system": [15017],
        "edge-system": [9443],
        "cert-manager": [10250],
        "monitoring": [10250],
    }
    # What the ALB reaches: the gateway's HTTPS (its health check included).
    from_the_load_balancer = {"istio-ingress": [443]}
    # What every pod's sidecar calls: istiod's xDS.
    from_every_pod = {"istio-system": [15012]}
    for namespace, spec in {**platform, "monitoring": monitoring}.items():
        assert spec["podSelector"] == {} and "Ingress" in spec["policyTypes"], namespace
        by_range = [r for r in spec["ingress"] if "ipBlock" in r["from"][0]]
        for rule in by_range:
            assert rule["from"] in (blocks(control_plane), blocks(load_balancer)), namespace
        assert [
            p["port"] for r in by_range if r["from"] == blocks(control_plane) for p in r["ports"]
        ] == from_the_control_plane.get(namespace, []), namespace
        assert [
            p["port"] for r in by_range if r["from"] == blocks(load_balancer) for p in r["ports"]
        ] == from_the_load_balancer.get(namespace, []), namespace
        any_pod = [r for r in spec["ingress"] if r["from"] == [{"namespaceSelector": {}}]]
        assert [p["port"] for r in any_pod for p in r["ports"]] == from_every_pod.get(
            namespace, []
        ), namespace
    for namespace, spec in platform.items():
        from_pods = [
            r
            for r in spec["ingress"]
            if "ipBlock" not in r["from"][0] and r["from"] != [{"namespaceSelector": {}}]
        ]
        expected = [
            {
                "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "monitoring"}}}],
                "ports": [{"port": port, "protocol": "TCP"}],
            }
            for port in scraped.get(namespace, [])
        ]
        if namespace == "tracing":
            # The gateway's proxies send spans (4317) and serve the UI (16686), which Grafana
            # also reads; the services and their sidecars send spans.
            gateway = {"namespaceSelector": {"matchLabels": {NAME_LABEL: "istio-ingress"}}}
            app = {"namespaceSelector": {"matchLabels": {NAME_LABEL: app_namespace(stack_run)}}}
            expected = [
                {"from": [gateway], "ports": [{"port": 4317, "protocol": "TCP"}]},
                {"from": [gateway], "ports": [{"port": 16686, "protocol": "TCP"}]},
                *expected,
                {"from": [app], "ports": [{"port": 4317, "protocol": "TCP"}]},
            ]
        if namespace == "istio-ingress":
            # The gateway asks the rate limit service beside it (gRPC).
            expected.append(
                {
                    "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: namespace}}}],
                    "ports": [{"port": 8081, "protocol": "TCP"}],
                }
            )
        assert from_pods == expected, namespace
    # Monitoring: the operator's webhook from the API server; its own pods among themselves;
    # prometheus-adapter to Prometheus only.
    assert monitoring["ingress"] == [
        {"from": blocks(control_plane), "ports": [{"port": 10250, "protocol": "TCP"}]},
        {"from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "monitoring"}}}]},
        {
            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "autoscaling-system"}}}],
            "ports": [{"port": 9090, "protocol": "TCP"}],
        },
        # The ingress gateway serves the operator UIs: Grafana's pods and Prometheus's.
        {
            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "istio-ingress"}}}],
            "ports": [{"port": 3000, "protocol": "TCP"}],
        },
        {
            "from": [{"namespaceSelector": {"matchLabels": {NAME_LABEL: "istio-ingress"}}}],
            "ports": [{"port": 9090, "protocol": "TCP"}],
        },
    ]
    bootstrap = platform["database-bootstrap"]
    assert bootstrap["ingress"] == []
    # DNS, the node's Pod Identity agent, Secrets Manager's endpoint in the VPC, PostgreSQL.
    assert {p["port"] for r in bootstrap["egress"] for p in r["ports"]} == {53, 80, 443, 5432}
    # HTTPS reaches the private subnets, where the interface endpoints (Secrets Manager's among
    # them) and the search domain's nodes live, and not the control plane's subnets, where the
    # EKS API server's private endpoint has its network interfaces (review 23, finding 12).
    private, _ = subnet_layout(VPC[stack_run.stack], 3)
    api_server = control_plane_layout(VPC[stack_run.stack], 3)
    https = [{"ipBlock": {"cidr": cidr}} for cidr in private]
    assert bootstrap["egress"][1:5] == [
        {
            "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
        *({"to": [block], "ports": [{"port": 443, "protocol": "TCP"}]} for block in https),
    ]
    search = platform["search-bootstrap"]
    assert search["ingress"] == []
    # DNS, the node's Pod Identity agent, the domain inside the VPC.
    assert search["egress"][1:] == [
        {
            "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}],
            "ports": [{"port": 80, "protocol": "TCP"}],
        },
        *({"to": [block], "ports": [{"port": 443, "protocol": "TCP"}]} for block in https),
    ]
    for policy in (bootstrap, search):
        for rule in policy["egress"]:
            for peer in rule.get("to", []):
                cidr = peer.get("ipBlock", {}).get("cidr")
                if cidr and any(p["port"] == 443 for p in rule["ports"]):
                    net = ipaddress.ip_network(cidr)
                    assert not any(net.overlaps(ipaddress.ip_network(c)) for c in api_server)


def webhook_sources(run: StackRun) -> dict[str, list[dict[str, Any]]]:
    """Each platform namespace's webhook rule (the API server's port): who it admits."""
    webhook_ports = {"istio-system": 15017, "edge-system": 9443, "cert-manager": 10250}
    found = {}
    for policy in kubernetes_objects(run):
        namespace = policy["metadata"].get("namespace")
        if policy["kind"] != "NetworkPolicy" or policy["metadata"]["name"] != "platform-default":
            continue
        if namespace in webhook_ports:
            port = {"port": webhook_ports[namespace], "protocol": "TCP"}
            [rule] = [r for r in policy["spec"]["ingress"] if port in r.get("ports", [])]
            found[namespace] = rule["from"]
    assert set(found) == {"istio-system", "edge-system", "cert-manager"}
    return found


def test_moving_the_control_plane_admits_both_ranges_for_one_up(staging: StackRun) -> None:
    """Finding 3 of the review: on a stack created with the cluster in the private subnets,
    the `up` that moves the control plane to its own subnets narrows the webhooks' sources in
    the same run; an EKS interface still in a private subnet would then be refused (istiod's
    injector fails closed: no pod starts). `webhooksFromPrivateSubnets` admits both ranges for
    that `up`; off (the default), the control plane's subnets alone."""
    control_plane, _ = admitted_ranges(staging)
    for sources in webhook_sources(staging).values():
        assert sources == blocks(control_plane)
    moving = run_with("staging", webhooksFromPrivateSubnets=True)
    assert admitted_ranges(moving)[0] == control_plane
    for namespace, sources in webhook_sources(moving).items():
        assert sources == blocks(control_plane + PRIVATE_SUBNETS["staging"]), namespace
    # The gateway still admits the load balancer's subnets only.
    [gateway] = [
        p
        for p in kubernetes_objects(moving)
        if p["kind"] == "NetworkPolicy"
        and p["metadata"]["name"] == "platform-default"
        and p["metadata"]["namespace"] == "istio-ingress"
    ]
    assert all(
        PRIVATE_SUBNETS["staging"][0] not in json.dumps(r["from"])
        for r in gateway["spec"]["ingress"]
    )
