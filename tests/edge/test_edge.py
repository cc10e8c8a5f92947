"""The edge: web ACL, certificates, DNS, the ALB's Ingresses, the gateway and its routes."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

import pytest

from components.edge.firewall import BASE_WCU_LIMIT, MANAGED_RULE_GROUPS, capacity
from offline.engine import StackRun, run_stack, stack_config
from offline.synth import kubernetes_objects
from stacks import SettingsError, settings_from_values
from stacks.merge import deep_merge
from tests.conftest import run_with
from tests.lookup import (
    helm_release,
    inline_policy,
    irsa_role,
    objects,
    signs_operators_in,
    waits_for,
)
from tests.test_settings import BASE

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
IP_SET = "aws:wafv2/ipSet:IpSet"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
CERTIFICATE = "aws:acm/certificate:Certificate"
VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
RECORD = "aws:route53/record:Record"
ALB = "alb.ingress.kubernetes.io"
# Annotations the controller requires to agree across an IngressGroup (its docs: "exclusive"
# or group-wide annotations).
GROUP_WIDE = (
    "group.name",
    "scheme",
    "listen-ports",
    "ssl-redirect",
    "certificate-arn",
    "ssl-policy",
    "wafv2-acl-arn",
    "shield-advanced-protection",
    "load-balancer-attributes",
    "listener-attributes.HTTPS-443",
)


def settings_of(run: StackRun) -> Any:
    return run.namespace["settings"]


def ingresses(run: StackRun) -> dict[str, dict[str, Any]]:
    return objects(run, "Ingress")


def annotation(ingress: dict[str, Any], key: str) -> str:
    return str(ingress["metadata"]["annotations"][f"{ALB}/{key}"])


def rules_of(run: StackRun) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = run.one(WEB_ACL).inputs["rules"]
    return rules


def hosts_of(ingress: dict[str, Any]) -> list[str]:
    return [rule["host"] for rule in ingress["spec"]["rules"]]


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("edge", "expected"),
    [
        (
            {"domain": "financialplanning.com", "hostedZone": {"name": "example.com"}},
            "edge.domain: 'financialplanning.com' is outside hosted zone 'example.com' "
            "(allowed: example.com or a name ending in .example.com)",
        ),
        (
            {"domain": "badexample.com"},
            "edge.domain: 'badexample.com' is outside hosted zone 'example.com'",
        ),
        (
            {"operatorAccess": None},
            "edge.operatorAccess: operator UIs ['grafana', 'prometheus', 'jaeger'] would be open "
            "to anyone (allowed: operatorAccess with oidc or allowedCidrs, or operatorUis: [])",
        ),
        (
            {
                "operatorAccess": {
                    "oidc": {
                        "issuer": "https://login.example.com",
                        "authorizationEndpoint": "https://login.example.com/a",
                        "tokenEndpoint": "https://login.example.com/t",
                        "userInfoEndpoint": "https://login.example.com/u",
                        "clientId": "ops",
                    }
                }
            },
            "edge.operatorAccess.oidc: both of oidc and allowedCidrs given (allowed: exactly "
            "one of them)",
        ),
        (
            {"operatorAccess": {"allowedCidrs": ["0.0.0.0/0"]}},
            "edge.operatorAccess.allowedCidrs[0]: '0.0.0.0/0' is the internet, not an allow-list",
        ),
        (
            {"operatorAccess": {"allowedCidrs": []}},
            "edge.operatorAccess.allowedCidrs: an empty allow-list admits nobody",
        ),
        ({"waf": {"requestsPerIp": 5}}, "edge.waf.requestsPerIp: 5 is invalid: input should be"),
        ({"waf": {"windowSeconds": 30}}, "edge.waf.windowSeconds: 30 is invalid: input should be"),
        (
            {"waf": {"logRetentionDays": 10}},
            "edge.waf.logRetentionDays: 10 is not a CloudWatch Logs retention",
        ),
        ({"operatorUis": ["kibana"]}, "edge.operatorUis[0]: 'kibana' is invalid"),
        ({"operatorUis": ["grafana", "grafana"]}, "edge.operatorUis: ['grafana', 'grafana']"),
        ({"apiHost": "grafana"}, "edge.apiHost: is also an operator UI's host"),
        ({"hostedZone": {"id": "zone-1"}}, "edge.hostedZone.id: 'zone-1' is invalid"),
        ({"domain": "Example.COM"}, "edge.domain: 'Example.COM' is invalid"),
        ({"accessLogs": True}, "edge.accessLogs: unknown setting (allowed: enabled, domain,"),
    ],
)
def test_bad_edge_settings_fail_with_one_line(edge: dict[str, Any], expected: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings_from_values("production", deep_merge(BASE, {"edge": edge}))
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message, message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"addons": {"mesh": {"enabled": False}}},
            "addons.mesh.enabled: the edge's gateway is the mesh's (allowed: true, or "
            "edge.enabled: false)",
        ),
        (
            {"addons": {"certManager": {"enabled": False}}},
            "addons.certManager.enabled: the edge needs it (allowed: true, or edge.enabled: false)",
        ),
        (
            {"addons": {"externalDns": {"replicas": 2}}},
            "addons.externalDns.replicas: external-dns has no leader election: two would race "
            "on the same records (allowed: 1)",
        ),
        (
            {
                "addons": {
                    "monitoring": {"enabled": False},
                    "prometheusAdapter": {"enabled": False},
                },
                "services": {
                    "financial-planning-api": {"autoscaling": {"requestsPerSecond": None}}
                },
                "environment": "staging",
            },
            "edge.operatorUis: grafana is the monitoring add-on's UI (enable addons.monitoring, "
            "or leave grafana out of operatorUis)",
        ),
    ],
)
def test_the_edge_needs_its_add_ons(values: dict[str, Any], expected: str) -> None:
    stack = values.pop("environment", "production")
    with pytest.raises(SettingsError) as caught:
        settings_from_values(stack, deep_merge(BASE, values))
    assert str(caught.value).startswith(expected), str(caught.value)


def test_the_sign_in_secret_is_required_exactly_where_operators_sign_in(
    production: StackRun, staging: StackRun
) -> None:
    assert signs_operators_in(production) and not signs_operators_in(staging)
    assert "financial-planning:operatorOidcClientSecret" not in stack_config("staging")[0]
    config, secret_keys = stack_config("production")
    del config["financial-planning:operatorOidcClientSecret"]
    with pytest.raises(SettingsError, match=r"^operatorOidcClientSecret: required secret is"):
        run_stack("production", config=config, secret_keys=secret_keys)


# --- the web ACL ---------------------------------------------------------------------------


def test_the_web_acl_is_regional_with_the_managed_groups_and_a_rate_per_ip(
    stack_run: StackRun,
) -> None:
    acl = stack_run.one(WEB_ACL).inputs
    waf = settings_of(stack_run).edge.waf
    assert acl["scope"] == "REGIONAL" and acl["defaultAction"] == {"allow": {}}
    rules = {r["name"]: r for r in rules_of(stack_run)}
    priorities = [r["priority"] for r in rules.values()]
    assert len(set(priorities)) == len(priorities)
    for group in (
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesSQLiRuleSet",
    ):
        statement = rules[group]["statement"]["managedRuleGroupStatement"]
        assert statement["vendorName"] == "AWS" and statement["name"] == group
        assert rules[group]["overrideAction"] == {"none": {}}
    rate = rules["rate-per-client-ip"]
    assert rate["action"] == {"block": {}}
    assert rate["statement"]["rateBasedStatement"] == {
        "aggregateKeyType": "IP",
        "limit": waf.requests_per_ip,
        "evaluationWindowSec": waf.window_seconds,
    }
    # The rate rule runs before the managed groups: a flood is cut before it is inspected.
    assert rate["priority"] < min(rules[g]["priority"] for _, g in MANAGED_RULE_GROUPS)
    assert (waf.requests_per_ip, waf.window_seconds) == (
        {"production": (2000, 300), "staging": (1000, 300)}[stack_run.stack]
    )


def test_every_rule_is_what_aws_accepts(stack_run: StackRun) -> None:
    # API reference, Rule: exactly one of Action and OverrideAction, the latter only for a
    # statement that runs a rule group; VisibilityConfig.MetricName: 1-128 of A-Za-z0-9_-,
    # not "All" or "Default_Action".
    acl = stack_run.one(WEB_ACL).inputs
    names = [acl["visibilityConfig"]["metricName"]]
    for rule in acl["rules"]:
        runs_group = "managedRuleGroupStatement" in rule["statement"]
        assert ("overrideAction" in rule) == runs_group, rule["name"]
        assert ("action" in rule) != runs_group, rule["name"]
        names.append(rule["visibilityConfig"]["metricName"])
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name) and name not in (
            "All",
            "Default_Action",
        ), name
    assert re.fullmatch(r"[\w-]{1,128}", acl["name"])


def test_the_web_acl_fits_its_base_capacity() -> None:
    assert capacity(0) == 25 + 700 + 200 + 200 + 2
    assert capacity(2) <= BASE_WCU_LIMIT
    # Past the base price's 1,500 units, AWS charges more per request: refused, not drifted.
    assert capacity(30) > BASE_WCU_LIMIT


def test_the_request_log_goes_where_waf_may_write_without_credentials(
    stack_run: StackRun,
) -> None:
    logging = stack_run.one(WAF_LOGGING).inputs
    [group] = [
        g
        for g in stack_run.of_type(LOG_GROUP)
        if g.state["arn"] in logging["logDestinationConfigs"]
    ]
    # WAF takes log groups named aws-waf-logs-*, by an ARN without the ":*" suffix.
    assert group.inputs["name"].startswith("aws-waf-logs-")
    assert not logging["logDestinationConfigs"][0].endswith(":*")
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    assert group.inputs["retentionInDays"] == settings_of(stack_run).edge.waf.log_retention_days
    assert logging["resourceArn"] == stack_run.one(WEB_ACL).state["arn"]
    assert {f["singleHeader"]["name"] for f in logging["redactedFields"]} == {
        "authorization",
        "cookie",
    }


# --- no operator UI without authentication --------------------------------------------------


def test_no_operator_ui_is_reachable_without_authentication(stack_run: StackRun) -> None:
    edge = settings_of(stack_run).edge
    found = ingresses(stack_run)
    routed = {host: ing for ing in found.values() for host in hosts_of(ing)}
    assert set(routed) == {edge.api_hostname, *edge.operator_hosts().values()}
    for ui, host in edge.operator_hosts().items():
        ingress = routed[host]
        signed_in = ingress["metadata"]["annotations"].get(f"{ALB}/auth-type") == "oidc"
        allow_listed = [
            r
            for r in rules_of(stack_run)
            if r.get("action") == {"block": {}}
            and "andStatement" in r["statement"]
            and host
            in json.dumps(r["statement"]["andStatement"]["statements"][0]["byteMatchStatement"])
        ]
        assert signed_in or allow_listed, f"{ui} ({host}) is open"
    # The public API needs no sign-in at the load balancer.
    assert f"{ALB}/auth-type" not in routed[edge.api_hostname]["metadata"]["annotations"]


def test_production_signs_operators_in_with_the_client_from_secrets_manager(
    production: StackRun,
) -> None:
    operators = ingresses(production)["edge-operators"]
    login = json.loads(annotation(operators, "auth-idp-oidc"))
    oidc = settings_of(production).edge.operator_access.oidc
    assert login == {
        "issuer": oidc.issuer,
        "authorizationEndpoint": oidc.authorization_endpoint,
        "tokenEndpoint": oidc.token_endpoint,
        "userInfoEndpoint": oidc.user_info_endpoint,
        "secretName": "operator-sso",
    }
    assert annotation(operators, "auth-on-unauthenticated-request") == "authenticate"
    # The Secret it names sits beside the Ingress, from Secrets Manager, with the keys the
    # controller reads.
    external = objects(production, "ExternalSecret")["operator-sso"]
    assert external["metadata"]["namespace"] == operators["metadata"]["namespace"]
    assert {d["secretKey"] for d in external["spec"]["data"]} == {"clientID", "clientSecret"}
    # No allow-list rule: sign-in is the gate.
    assert production.of_type(IP_SET) == []


def test_staging_allow_lists_the_operator_hosts_at_the_web_acl(staging: StackRun) -> None:
    edge = settings_of(staging).edge
    [ip_set] = staging.of_type(IP_SET)
    assert ip_set.inputs["addresses"] == edge.operator_access.allowed_cidrs == ["203.0.113.0/28"]
    assert ip_set.inputs["scope"] == "REGIONAL" and ip_set.inputs["ipAddressVersion"] == "IPV4"
    blocked = {}
    for rule in rules_of(staging):
        if "andStatement" not in rule["statement"]:
            continue
        host_match, outside = rule["statement"]["andStatement"]["statements"]
        match = host_match["byteMatchStatement"]
        assert match["fieldToMatch"] == {"singleHeader": {"name": "host"}}
        # A prefix, lowercased: "Grafana.…:443" is caught too.
        assert match["positionalConstraint"] == "STARTS_WITH"
        assert match["textTransformations"] == [{"priority": 0, "type": "LOWERCASE"}]
        reference = outside["notStatement"]["statement"]["ipSetReferenceStatement"]
        assert reference["arn"] == ip_set.state["arn"]
        blocked[match["searchString"]] = rule
    assert set(blocked) == set(edge.operator_hosts().values())
    assert "auth-type" not in json.dumps(ingresses(staging)["edge-operators"])


# --- certificates, DNS, the ALB -----------------------------------------------------------


def test_one_acm_certificate_with_one_validation_record(stack_run: StackRun) -> None:
    edge = settings_of(stack_run).edge
    certificate = stack_run.one(CERTIFICATE)
    assert certificate.inputs["domainName"] == edge.domain
    assert certificate.inputs["subjectAlternativeNames"] == [f"*.{edge.domain}"]
    assert certificate.inputs["validationMethod"] == "DNS"
    # In the provider's region, the ALB's: no region of its own.
    assert "region" not in certificate.inputs
    # The domain and its wildcard share one validation record: exactly one is written.
    options = certificate.state["domainValidationOptions"]
    assert len({o["resourceRecordName"] for o in options}) == 1
    [record] = stack_run.of_type(RECORD)
    assert record.inputs["zoneId"] == edge.hosted_zone.id
    assert record.inputs["name"] == options[0]["resourceRecordName"]
    assert record.inputs["records"] == [options[0]["resourceRecordValue"]]
    validation = stack_run.one(VALIDATION).inputs
    assert validation["validationRecordFqdns"] == [record.state["fqdn"]]
    # The listener gets the certificate once it is issued (the validation's ARN).
    for ingress in ingresses(stack_run).values():
        assert annotation(ingress, "certificate-arn") == validation["certificateArn"]


def test_one_alb_for_every_host_https_only_with_hsts(stack_run: StackRun) -> None:
    found = list(ingresses(stack_run).values())
    assert len(found) == 2
    first = found[0]
    for key in GROUP_WIDE:
        assert {annotation(i, key) for i in found} == {annotation(first, key)}, key
    assert annotation(first, "group.name") == f"financial-planning-{stack_run.stack}"
    assert annotation(first, "scheme") == "internet-facing"
    assert annotation(first, "target-type") == "ip"
    assert json.loads(annotation(first, "listen-ports")) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert annotation(first, "ssl-redirect") == "443"
    assert annotation(first, "ssl-policy").startswith("ELBSecurityPolicy-TLS13-")
    assert annotation(first, "wafv2-acl-arn") == stack_run.one(WEB_ACL).state["arn"]
    hsts = annotation(first, "listener-attributes.HTTPS-443")
    key, _, value = hsts.partition("=")
    assert key == "routing.http.response.strict_transport_security.header_value"
    max_age = int(re.fullmatch(r"max-age=([0-9]+); includeSubDomains", value).group(1))  # type: ignore[union-attr]
    assert max_age >= 31_536_000
    attributes = dict(
        a.split("=", 1) for a in annotation(first, "load-balancer-attributes").split(",")
    )
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["deletion_protection.enabled"] == str(settings_of(stack_run).protect).lower()
    # To the gateway over TLS, and its health the same way (test_the_health_check_proves_tls).
    assert annotation(first, "backend-protocol") == "HTTPS"
    for ingress in found:
        assert ingress["metadata"]["namespace"] == "istio-ingress"
        assert ingress["spec"]["ingressClassName"] == "alb"
        for rule in ingress["spec"]["rules"]:
            [path] = rule["http"]["paths"]
            assert path["backend"]["service"] == {
                "name": "istio-ingressgateway",
                "port": {"number": 443},
            }


def test_shield_advanced_is_a_setting(staging: StackRun) -> None:
    assert annotation(ingresses(staging)["edge-public"], "shield-advanced-protection") == "false"
    role = irsa_role(staging, "edge-system", "aws-load-balancer-controller")
    assert not any(
        a.startswith("shield:")
        for s in inline_policy(staging, role)
        for a in s["Action"]
        if isinstance(s["Action"], list)
    )
    run = run_with("staging", edge={"shieldAdvanced": True})
    assert annotation(ingresses(run)["edge-public"], "shield-advanced-protection") == "true"
    assert helm_release(run, "aws-load-balancer-controller").inputs["values"]["enableShield"]
    role = irsa_role(run, "edge-system", "aws-load-balancer-controller")
    actions = {
        a
        for s in inline_policy(run, role)
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"shield:CreateProtection", "shield:DeleteProtection"} <= actions


def test_the_ingresses_go_before_their_controller_on_destroy(stack_run: StackRun) -> None:
    controller = helm_release(stack_run, "aws-load-balancer-controller")
    for ingress in stack_run.of_type("kubernetes:networking.k8s.io/v1:Ingress"):
        # Created after it, so deleted before it: the controller removes the ALB meanwhile.
        assert controller.urn in waits_for(stack_run, ingress.urn), ingress.name


# --- the add-ons ---------------------------------------------------------------------------


def test_the_load_balancer_controller_knows_its_cluster_and_vpc(stack_run: StackRun) -> None:
    values = helm_release(stack_run, "aws-load-balancer-controller").inputs["values"]
    vpc = stack_run.one("aws:ec2/vpc:Vpc")
    assert values["clusterName"] == f"financial-planning-{stack_run.stack}"
    assert values["vpcId"] == vpc.id
    assert values["enableWafv2"] is True and values["enableWaf"] is False
    role = irsa_role(stack_run, "edge-system", "aws-load-balancer-controller")
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(role.id)
    actions = {
        a
        for s in inline_policy(stack_run, role)
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    # WAF Classic and Cognito are not used: not granted.
    assert not any(a.startswith(("waf-regional:", "cognito-idp:", "waf:")) for a in actions)
    # Its pods pass restricted admission.
    assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert values["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_cert_manager_proves_only_acme_challenges_in_the_stacks_zone(stack_run: StackRun) -> None:
    edge = settings_of(stack_run).edge
    values = helm_release(stack_run, "cert-manager").inputs["values"]
    assert values["crds"] == {"enabled": True, "keep": True}
    role = irsa_role(stack_run, "cert-manager", "cert-manager")
    records, changes = inline_policy(stack_run, role)
    assert records["Action"] == "route53:ChangeResourceRecordSets"
    assert records["Resource"] == f"arn:aws:route53:::hostedzone/{edge.hosted_zone.id}"
    condition = records["Condition"]
    assert condition["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
    }
    names = condition["ForAllValues:StringLike"][
        "route53:ChangeResourceRecordSetsNormalizedRecordNames"
    ]
    assert all(n.startswith("_acme-challenge.") and n.endswith(edge.domain) for n in names)
    assert changes["Action"] == "route53:GetChange"
    issuers = objects(stack_run, "ClusterIssuer")
    assert set(issuers) == {"letsencrypt-production", "letsencrypt-staging"}
    for issuer in issuers.values():
        [solver] = issuer["spec"]["acme"]["solvers"]
        assert solver["dns01"] == {"route53": {"hostedZoneID": edge.hosted_zone.id}}
        assert solver["selector"] == {"dnsZones": [edge.domain]}
        assert issuer["spec"]["acme"]["email"] == edge.acme_email
    assert (
        issuers["letsencrypt-production"]["spec"]["acme"]["server"]
        == "https://acme-v02.api.letsencrypt.org/directory"
    )


def test_external_dns_owns_only_its_records_under_the_domain(stack_run: StackRun) -> None:
    edge = settings_of(stack_run).edge
    values = helm_release(stack_run, "external-dns").inputs["values"]
    assert values["sources"] == ["ingress"]
    assert values["domainFilters"] == [edge.domain]
    assert values["policy"] == "sync" and values["registry"] == "txt"
    assert values["txtOwnerId"] == f"financial-planning-{stack_run.stack}"
    assert values["extraArgs"]["zone-id-filter"] == edge.hosted_zone.id
    role = irsa_role(stack_run, "edge-system", "external-dns")
    change, read, find = inline_policy(stack_run, role)
    assert (
        change["Resource"]
        == read["Resource"]
        == f"arn:aws:route53:::hostedzone/{edge.hosted_zone.id}"
    )
    assert change["Condition"]["ForAllValues:StringLike"] == {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [edge.domain, f"*.{edge.domain}"]
    }
    # Listing zones takes no resource (Route 53 authorization reference).
    assert (find["Action"], find["Resource"]) == ("route53:ListHostedZones", "*")


def test_the_gateway_runs_restricted_behind_the_alb_with_its_own_proxy(
    stack_run: StackRun,
) -> None:
    values = helm_release(stack_run, "gateway").inputs["values"]
    assert values["service"]["type"] == "ClusterIP"
    assert values["replicaCount"] == settings_of(stack_run).addons.ingress_gateway.replicas
    context = values["securityContext"]
    assert context["seccompProfile"] == {"type": "RuntimeDefault"} and context["runAsNonRoot"]
    assert context["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    # One trusted proxy (the ALB), and the token keys' failed fetches kept among its statistics
    # (tests/edge/test_gateway_reach.py).
    assert json.loads(values["podAnnotations"]["proxy.istio.io/config"]) == {
        "gatewayTopology": {"numTrustedProxies": 1},
        "proxyStatsMatcher": {"inclusionSuffixes": ["jwt_authn.jwks_fetch_failed"]},
    }
    [namespace] = [
        n
        for n in objects(stack_run, "Namespace").values()
        if n["metadata"]["name"] == "istio-ingress"
    ]
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    # Injection by the pod's own label (the gateway asks for its proxy so).
    assert "istio-injection" not in labels


# --- the gateway and its routes -------------------------------------------------------------


def test_every_host_is_served_certified_and_routed(stack_run: StackRun) -> None:
    edge = settings_of(stack_run).edge
    [gateway] = objects(stack_run, "Gateway").values()
    [certificate] = objects(stack_run, "Certificate").values()
    [server] = gateway["spec"]["servers"]
    assert server["port"] == {"number": 443, "name": "https", "protocol": "HTTPS"}
    assert server["tls"]["credentialName"] == certificate["spec"]["secretName"]
    assert certificate["metadata"]["namespace"] == gateway["metadata"]["namespace"]
    assert certificate["spec"]["issuerRef"]["name"] in objects(stack_run, "ClusterIssuer")
    services = {
        (s["metadata"]["name"], s["metadata"]["namespace"]): {p["port"] for p in s["spec"]["ports"]}
        for s in objects(stack_run, "Service").values()
    }
    edge_routes = {
        name: vs
        for name, vs in objects(stack_run, "VirtualService").items()
        if vs["spec"].get("gateways") == ["edge"] and vs["spec"]["hosts"] != ["*"]
    }
    hosts = [h for vs in edge_routes.values() for h in vs["spec"]["hosts"]]
    assert sorted(hosts) == sorted([edge.api_hostname, *edge.operator_hosts().values()])
    assert sorted(certificate["spec"]["dnsNames"]) == sorted(hosts)
    monitoring = helm_release(stack_run, "kube-prometheus-stack").inputs["values"]
    # The chart's Services: <fullname>-prometheus, and Grafana's own fullname.
    chart_services = {
        (f"{monitoring['fullnameOverride']}-prometheus", "monitoring"): {9090},
        (monitoring["grafana"]["fullnameOverride"], "monitoring"): {80},
        # Jaeger's one Service: the UI's port beside the collector's.
        (helm_release(stack_run, "jaeger").inputs["values"]["fullnameOverride"], "tracing"): {
            16686
        },
    }
    for vs in edge_routes.values():
        assert vs["metadata"]["namespace"] == gateway["metadata"]["namespace"]
        for host in vs["spec"]["hosts"]:
            assert any(fnmatch.fnmatch(host, pattern) for pattern in server["hosts"]), host
        for route in vs["spec"]["http"]:
            [destination] = route["route"]
            target = destination["destination"]
            name, namespace = target["host"].removesuffix(".svc.cluster.local").split(".")
            ports = services.get((name, namespace)) or chart_services[(name, namespace)]
            assert target["port"]["number"] in ports, target


def test_the_api_host_serves_exactly_the_edge_services(stack_run: StackRun) -> None:
    api = objects(stack_run, "VirtualService")["edge-api"]
    targets = {
        route["route"][0]["destination"]["host"].split(".")[0]: route.get("match")
        for route in api["spec"]["http"]
    }
    edge_services = {n for n, s in settings_of(stack_run).services.items() if s.edge}
    assert set(targets) == edge_services == {"financial-planning-api", "graphql-gateway"}
    assert targets["graphql-gateway"] == [{"uri": {"prefix": "/graphql"}}]
    # The REST API takes everything else, so it is the last route.
    assert api["spec"]["http"][-1]["route"][0]["destination"]["host"].startswith(
        "financial-planning-api."
    )
    assert "match" not in api["spec"]["http"][-1]


def test_without_the_edge_nothing_of_it() -> None:
    run = run_with("staging", edge={"enabled": False})
    charts = {r.inputs["chart"] for r in run.of_type("kubernetes:helm.sh/v3:Release")}
    assert not charts & {"aws-load-balancer-controller", "cert-manager", "external-dns", "gateway"}
    assert not run.of_type(WEB_ACL) and not run.of_type(CERTIFICATE)
    kinds = {o["kind"] for o in kubernetes_objects(run)}
    assert not kinds & {"Ingress", "Gateway", "Certificate", "ClusterIssuer"}


def test_the_stack_exports_its_urls_and_the_uis_know_theirs(production: StackRun) -> None:
    # What the stack exports (__main__.py's `pulumi.export`s, registered on the root stack).
    exported = production.exports
    assert exported["apiUrl"] == "https://api.financialplanning.com"
    assert exported["operatorUrls"] == {
        "grafana": "https://grafana.financialplanning.com",
        "prometheus": "https://prometheus.financialplanning.com",
        "jaeger": "https://jaeger.financialplanning.com",
    }
    assert exported["webAclArn"] == production.one(WEB_ACL).state["arn"]
    values = helm_release(production, "kube-prometheus-stack").inputs["values"]
    urls = exported["operatorUrls"]
    assert values["grafana"]["grafana.ini"]["server"]["root_url"] == urls["grafana"]
    assert values["prometheus"]["prometheusSpec"]["externalUrl"] == urls["prometheus"]


def test_the_gateway_is_scraped_on_the_port_its_namespace_admits(stack_run: StackRun) -> None:
    monitor = objects(stack_run, "PodMonitor")["istio-ingress-gateway"]["spec"]
    assert monitor["namespaceSelector"] == {"matchNames": ["istio-ingress"]}
    assert monitor["selector"] == {"matchLabels": {"istio": "ingressgateway"}}
    [endpoint] = monitor["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http-envoy-prom", "/stats/prometheus")
    [policy] = [
        p
        for p in kubernetes_objects(stack_run)
        if p["kind"] == "NetworkPolicy" and p["metadata"]["namespace"] == "istio-ingress"
    ]
    assert {
        "from": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "ports": [{"port": 15090, "protocol": "TCP"}],
    } in policy["spec"]["ingress"]
