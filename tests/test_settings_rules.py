"""The settings' rules (stacks/rules.py and the strict types beside them), one table per class
of the issue "settings that refuse what AWS, Kubernetes and the seed refuse, and accept what
they allow", each with its negative control: a value the same rule must accept.

The facts are the sources' (cited in stacks/rules.py, stacks/aws_facts.py, stacks/loader.py,
offline/engine.py); the tests feed values a stack file could hold.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.engine import read_stack_file, run_stack
from offline.synth import main as synth
from stacks import SettingsError, any_settings_from_values, settings_from_values
from stacks.addon_settings import REQUEST_PATH_ADDONS
from stacks.aws_facts import OPENSEARCH_EBS_GP3_MAX_GIB
from stacks.catalog import SEED_REPLICA_RANGES, SERVICE_NAMES, ServiceName, request_path_services
from stacks.environments import DEFAULTS
from stacks.loader import key_path
from stacks.merge import deep_merge
from stacks.rules import ISTIO_SIDECAR_PORT_RANGE, ISTIO_SIDECAR_PORTS
from stacks.settings import StackSettings
from tests.test_bad_input import REFUSAL, stack_file
from tests.test_settings import BASE

ACCOUNT = "123456789012"


def refused(values: dict[str, Any], stack: str = "production") -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_values(stack, deep_merge(BASE, values))
    message = str(caught.value)
    assert "\n" not in message and REFUSAL.match(message), message
    return message


def accepted(values: dict[str, Any], stack: str = "production") -> StackSettings:
    return settings_from_values(stack, deep_merge(BASE, values))


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


DELIVERY = {
    "accountId": ACCOUNT,
    "stateBucket": "financial-planning-production-state",
    "repository": "example-org/financial-planning",
    "githubConnection": f"arn:aws:codeconnections:eu-west-1:{ACCOUNT}:connection/abc",
    "previewRole": role("preview"),
}


# --- IAM names within 64 characters, in every ARN setting -----------------------------------
def arn_setting(key: str, arn: str) -> tuple[dict[str, Any], str]:
    """Stack values putting `arn` at `key`, and the key path a refusal must name."""
    access = {"deployer": role("deployer")}
    if key == "deployer":
        return {"access": {"deployer": arn}}, "access.deployer"
    if key in ("platformAdmins", "sres", "developers"):
        return {"access": {**access, key: [arn]}}, f"access.{key}[0]"
    if key == "auditors":
        return {"access": {**access, "auditors": [role("preview"), arn]}}, "access.auditors[1]"
    if key == "administratorArn":
        return {"data": {"search": {"administratorArn": arn}}}, "data.search.administratorArn"
    assert key == "previewRole"
    values = {"delivery": {**DELIVERY, "previewRole": arn}, "access": {**access, "auditors": [arn]}}
    return values, "delivery.previewRole"


ARN_KEYS = ["deployer", "platformAdmins", "sres", "developers", "auditors", "administratorArn"]


@pytest.mark.parametrize("key", ARN_KEYS)
@pytest.mark.parametrize("kind", ["role", "user"])
def test_an_iam_name_over_64_characters_is_refused_in_every_arn_setting(
    key: str, kind: str
) -> None:
    # IAM: role and user names 1-64 (botocore iam model roleNameType, userNameType).
    arn = f"arn:aws:iam::{ACCOUNT}:{kind}/team/{'n' * 65}"
    values, where = arn_setting(key, arn)
    message = refused(values)
    assert message.startswith(f"{where}: "), message
    assert "65 characters: IAM allows at most 64" in message
    # Negative control: 64 is IAM's own limit.
    accepted(arn_setting(key, f"arn:aws:iam::{ACCOUNT}:{kind}/team/{'n' * 64}")[0])


def test_the_preview_role_name_is_held_to_64_too() -> None:
    # The preview role is also listed among the auditors: both keys are named, one line each.
    values = deep_merge(BASE, arn_setting("previewRole", role("p" * 65))[0])
    with pytest.raises(SettingsError) as caught:
        settings_from_values("production", values)
    lines = str(caught.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["access.auditors[0]", "delivery.previewRole"]
    assert all("65 characters: IAM allows at most 64" in line for line in lines)
    accepted(arn_setting("previewRole", role("p" * 64))[0])


# IAM API reference / botocore 1.44.8 data/iam/2010-05-08/service-2.json: pathType
# `(\u002F)|(\u002F[\u0021-\u007E]+\u002F)`, 1-512 characters; roleNameType and userNameType
# `[\w+=,.@-]+`, 1-64. The ARN is role|user, then the path, then the name.
@pytest.mark.parametrize(
    ("arn", "why"),
    [
        (role("/x"), "has a path IAM does not allow"),  # path "//"
        (role("p" * 511 + "/x"), "has a path IAM does not allow"),  # path of 513
        (role("a b"), "IAM role names use letters, digits and + = , . @ _ - only"),
        (role("team/ops#1"), "IAM role names use letters"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/session", "is a session of a role"),
        (f"arn:aws-us-gov:iam::{ACCOUNT}:role/x", "outside the commercial partition"),
        (f"arn:aws:iam::{ACCOUNT}:group/x", "is not an IAM role or user ARN: give arn:aws:iam::"),
    ],
)
def test_an_arn_iam_could_not_have_is_refused_in_words(arn: str, why: str) -> None:
    message = refused({"access": {"deployer": arn}})
    assert message.startswith(f"access.deployer: {arn[:57]!r}"[:30]) and why in message, message
    assert "pattern" not in message, message


@pytest.mark.parametrize(
    "arn",
    [
        role("x"),
        role("team/x"),
        role("a!b~c/x"),  # any of 0x21-0x7E in a path
        role("p" * 510 + "/" + "n" * 64),  # a 512-character path and a 64-character name
        f"arn:aws:iam::{ACCOUNT}:user/ops/alice",
    ],
)
def test_arns_iam_allows_are_accepted(arn: str) -> None:
    assert accepted({"access": {"sres": [arn]}}).access.sres == [arn]


# --- Reserved master user names ----------------------------------------------------------------
# rdsadmin/admin: cfn-lint#4425 (tried against CloudFormation); rds_*: the Aurora User Guide's
# RDS roles; pg_*: PostgreSQL CREATE ROLE; user/select/all: kwlist.h RESERVED_KEYWORD; public
# and none: postgres src/backend/parser/gram.y RoleSpec/RoleId ('role name "none" is reserved').
@pytest.mark.parametrize(
    "name",
    [
        "rdsadmin",
        "rdsrepladmin",
        "admin",
        "rds_superuser",
        "pg_monitor",
        "user",
        "select",
        "all",
        "public",
        "none",
    ],
)
def test_a_master_username_rds_or_postgresql_reserves_is_refused(name: str) -> None:
    message = refused({"data": {"database": {"masterUsername": name}}})
    assert message.startswith(f"data.database.masterUsername: {name!r} is "), message


# A role name is gram.y's RoleId (NonReservedWord), which takes kwlist.h's
# TYPE_FUNC_NAME_KEYWORD words (left, verbose) that a database name cannot be.
@pytest.mark.parametrize(
    "name", ["postgres", "fp_admin", "dbowner", "administrator", "left", "verbose", "publics"]
)
def test_master_usernames_rds_takes_are_accepted(name: str) -> None:
    # cfn-lint#4425: postgres succeeds on aurora-postgresql; unreserved words are names.
    assert accepted({"data": {"database": {"masterUsername": name}}}).data.database.master_username


# --- Ports ---------------------------------------------------------------------------------
# The ports Istio 1.30.3's sidecar listens on, as read at that tag (istio/istio): the
# injection template's 15001, 15006, 15021, 15090 (and istiod's 15012) in
# manifests/charts/istio-control/istio-discovery/files/injection-template.yaml;
# tools/istio-iptables/pkg/constants/constants.go DefaultIptablesProbePortUint = 15002 and
# IstioAgentDNSListenerPort = "15053"; the agent's status port 15020 (istio-discovery
# values.yaml global.proxy.statusPort); Envoy's admin 15000 (pilot-agent request.go).
ISTIO_1_30_3_PORTS = {15000, 15001, 15002, 15006, 15012, 15020, 15021, 15053, 15090}


def test_the_ports_istio_1_30_3_uses_lie_inside_the_refused_range() -> None:
    assert set(ISTIO_SIDECAR_PORT_RANGE) >= ISTIO_1_30_3_PORTS
    assert ISTIO_1_30_3_PORTS - {15012} <= ISTIO_SIDECAR_PORTS  # 15012 is istiod's


@pytest.mark.parametrize("port", [15000, 15001, 15006, 15008, 15020, 15021, 15053, 15090])
def test_a_service_port_the_sidecar_owns_is_refused(port: int) -> None:
    message = refused({"services": {"user-service": {"port": port}}})
    assert message.startswith(f"services.user-service.port: {port} is inside 15000-15090")


@pytest.mark.parametrize("port", [14999, 15091, 9090])
def test_service_ports_outside_the_sidecar_range_are_accepted(port: int) -> None:
    assert accepted({"services": {"user-service": {"port": port}}}).services["user-service"]


OIDC = {
    "issuer": "https://login.example.org",
    "authorizationEndpoint": "https://login.example.org/authorize",
    "tokenEndpoint": "https://login.example.org/token",
    "userInfoEndpoint": "https://login.example.org/userinfo",
    "clientId": "fp",
}


@pytest.mark.parametrize("port", [0, 65536, 99999])
@pytest.mark.parametrize("key", ["issuer", "tokenEndpoint"])
def test_a_url_port_outside_1_to_65535_is_refused(port: int, key: str) -> None:
    url = f"https://login.example.org:{port}/x"
    message = refused(
        {"edge": {"operatorAccess": {"allowedCidrs": None, "oidc": {**OIDC, key: url}}}}
    )
    assert message.startswith(f"edge.operatorAccess.oidc.{key}: "), message
    assert "port outside 1-65535" in message


@pytest.mark.parametrize("port", [0, 70000])
def test_the_prometheus_url_port_is_held_to_the_same_rule(port: int) -> None:
    url = f"http://prometheus.monitoring:{port}"
    message = refused({"addons": {"prometheusAdapter": {"prometheusUrl": url}}})
    assert message.startswith("addons.prometheusAdapter.prometheusUrl: "), message
    # Negative control.
    ok = {"addons": {"prometheusAdapter": {"prometheusUrl": "http://prometheus.monitoring:65535"}}}
    assert accepted(ok).addons.prometheus_adapter.prometheus_url


def test_oidc_urls_with_real_ports_are_accepted() -> None:
    oidc = {**OIDC, "issuer": "https://login.example.org:8443"}
    values = {"edge": {"operatorAccess": {"allowedCidrs": None, "oidc": oidc}}}
    assert accepted(values).edge.operator_login is not None


# --- OpenSearch EBS volume maxima ------------------------------------------------------------
@pytest.mark.parametrize(("instance_type", "most"), sorted(OPENSEARCH_EBS_GP3_MAX_GIB.items()))
def test_each_search_type_takes_its_own_ebs_maximum_and_no_more(
    instance_type: str, most: int
) -> None:
    def search(size: int) -> dict[str, Any]:
        # Staging: one data node, no dedicated masters (production asks for both).
        return {"data": {"search": {"instanceType": instance_type, "volumeSizeGib": size}}}

    assert accepted(search(most), "staging").data.search.volume_size_gib == most
    message = refused(search(most + 1), "staging")
    # The largest maximum is also the field's own bound.
    bound = f"{most + 1} is invalid: input should be less than or equal to {most}"
    above = f"{most + 1} GiB is above the {most}"
    assert message.startswith(f"data.search.volumeSizeGib: {bound if most == 24576 else above}")


def test_the_quota_table_holds_the_pages_figures() -> None:
    # Spot checks against the quotas page's gp3 column (1 TiB = 1024 GiB).
    assert OPENSEARCH_EBS_GP3_MAX_GIB["r6g.large.search"] == 2 * 1024
    assert OPENSEARCH_EBS_GP3_MAX_GIB["c6g.large.search"] == 256
    assert OPENSEARCH_EBS_GP3_MAX_GIB["m6g.12xlarge.search"] == 18 * 1024


# --- Allow-lists on the internet's side --------------------------------------------------------
PRIVATE = ["10.0.0.0/8", "10.20.0.0/16", "172.16.0.0/12", "172.31.255.0/24", "192.168.1.0/24"]
# Globally reachable in IANA's IPv4 Special-Purpose Address Registry (none of its entries):
# 172.32/16 sits just past RFC 1918's 172.16/12, 11/8 just past 10/8.
PUBLIC = ["52.94.0.0/16", "172.32.0.0/16", "8.8.8.8/32", "11.0.0.0/8"]
# RFC 5737 section 3: 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 "MUST NOT appear on the
# public Internet" (the registry's Globally Reachable: False).
DOCUMENTATION = ["192.0.2.0/24", "198.51.100.64/27", "203.0.113.0/28"]


@pytest.mark.parametrize("cidr", PRIVATE)
@pytest.mark.parametrize("key", ["endpointPublicAccessCidrs", "allowedCidrs"])
def test_a_private_range_in_an_internet_allow_list_is_refused(cidr: str, key: str) -> None:
    listed = ["198.51.100.0/24", cidr]
    if key == "allowedCidrs":
        values: dict[str, Any] = {"edge": {"operatorAccess": {"allowedCidrs": listed}}}
        where = "edge.operatorAccess.allowedCidrs[1]"
    else:
        values, where = {key: listed}, f"{key}[1]"
    message = refused(values)
    assert message.startswith(f"{where}: {cidr!r} is private (RFC 1918"), message


@pytest.mark.parametrize("cidr", PUBLIC)
def test_public_ranges_are_accepted_in_both_allow_lists(cidr: str) -> None:
    settings = accepted(
        {"endpointPublicAccessCidrs": [cidr], "edge": {"operatorAccess": {"allowedCidrs": [cidr]}}}
    )
    assert settings.endpoint_public_access_cidrs == [cidr]


@pytest.mark.parametrize("cidr", DOCUMENTATION)
@pytest.mark.parametrize("key", ["endpointPublicAccessCidrs", "allowedCidrs"])
def test_a_documentation_range_is_refused_in_production_only(cidr: str, key: str) -> None:
    if key == "allowedCidrs":
        values: dict[str, Any] = {"edge": {"operatorAccess": {"allowedCidrs": [cidr]}}}
        where = "edge.operatorAccess.allowedCidrs"
    else:
        values, where = {key: [cidr]}, key
    message = refused(values)
    assert message.startswith(f"{where}: {cidr!r} is a documentation range (RFC 5737"), message
    # Negative control: staging's example file uses them as stand-ins.
    assert accepted(values, "staging")


def test_a_range_with_host_bits_is_refused_with_the_network_meant() -> None:
    # WAF refuses host bits (aws/aws-cdk#20003), as does the provider's ValidCIDRNetworkAddress.
    message = refused({"endpointPublicAccessCidrs": ["11.0.0.1/8"]})
    assert message == (
        "endpointPublicAccessCidrs[0]: '11.0.0.1/8' has host bits set (did you mean '11.0.0.0/8'?)"
    ), message
    assert "is not an IPv4 network" in refused({"endpointPublicAccessCidrs": ["11.0.0/8x"]})


@pytest.mark.parametrize("key", ["endpointPublicAccessCidrs", "allowedCidrs"])
def test_a_range_listed_twice_is_kept_once(key: str) -> None:
    # The provider sends both lists as sets (schema.TypeSet): accepted, de-duplicated.
    listed = ["52.94.0.0/28", "11.0.0.0/24", "52.94.0.0/28"]
    if key == "allowedCidrs":
        settings = accepted({"edge": {"operatorAccess": {"allowedCidrs": listed}}})
        kept = settings.edge.operator_access.allowed_cidrs  # type: ignore[union-attr]
    else:
        kept = accepted({key: listed}).endpoint_public_access_cidrs
    assert kept == ["52.94.0.0/28", "11.0.0.0/24"]


def test_forty_distinct_ranges_with_repeats_fit_the_eks_limit_and_41_do_not() -> None:
    forty = [f"198.51.{i}.0/24" for i in range(40)]
    assert (
        len(accepted({"endpointPublicAccessCidrs": forty + forty[:5]}).endpoint_public_access_cidrs)
        == 40
    )
    message = refused({"endpointPublicAccessCidrs": [*forty, "203.0.113.0/24"]})
    assert message.startswith("endpointPublicAccessCidrs: 41 ranges: EKS accepts at most 40")


# --- Let's Encrypt's contacts --------------------------------------------------------------
# letsencrypt/boulder v0.20260804.0 policy/pa.go ValidEmail -> validNonWildcardDomain
# (errTooFewLabels, errIPAddressInDNS, errNameTooLong, errNonPublic, errInvalidRLDH,
# errTooManyLabels, errInvalidDNSCharacter) and forbiddenMailDomains; wfe2/wfe.go refuses
# '?' and '#'. A TLD is never numeric (RFC 3696 section 2).
@pytest.mark.parametrize(
    "email",
    [
        "ops@a.b",
        "ops@x.123",
        "ops@1.2.3.4",
        "ops@company",
        "ops@" + ".".join(["a" * 60] * 5) + ".com",  # 308 bytes
        "ops@host.site1",
        "ops@example.com",
        "ops@example.net",
        "ops@example.org",
        "ops@corp.local",
        "ops@team.test",
        "ops@localhost.localhost",
        "ops@ab--cd.io",
        "ops@" + ".".join(["a"] * 11) + ".com",
        "ops@-bad.io",
    ],
)
def test_an_acme_contact_lets_encrypt_refuses_is_refused(email: str) -> None:
    message = refused({"edge": {"acmeEmail": email}})
    assert message.startswith("edge.acmeEmail: Let's Encrypt refuses"), message


@pytest.mark.parametrize("email", ["ops?x@company.com", "ops#x@company.com", "ops@@company.com"])
def test_an_address_boulder_cannot_parse_is_refused(email: str) -> None:
    message = refused({"edge": {"acmeEmail": email}})
    assert "is not an e-mail address Let's Encrypt accepts (allowed: name@domain" in message


# net/mail ParseAddress (which ValidEmail calls) takes RFC 5322 dot-atom local parts: atext is
# letters, digits and !#$%&'*+-/=?^_`{|}~ (RFC 5322 section 3.2.3); boulder's wfe2 then
# refuses '?' and '#' only.
@pytest.mark.parametrize(
    "email",
    [
        "ops@financialplanning.com",
        "ops@mail.example.com",
        "a.b+c@xn--bcher-kva.de",
        "o'brien@company.ie",
        "ops&sre@company.com",
        "a=b@company.com",
        "first!last@x.io",
    ],
)
def test_acme_contacts_lets_encrypt_takes_are_accepted(email: str) -> None:
    # boulder refuses example.com itself (an exact match), not its subdomains.
    assert accepted({"edge": {"acmeEmail": email}}).edge.acme_email == email


# --- Nulls -------------------------------------------------------------------------------------
# The CLI hands a top-level null as "" (pulumi sdk/go/common/workspace/loaders.go
# checkForEmptyConfig; config/value.go unmarshalValue); inside a mapping it stays null.
@pytest.mark.parametrize("null", [None, ""])
@pytest.mark.parametrize("key", ["iamPermissionsBoundary", "monthlyBudgetUsd", "vpcCidr", "tags"])
def test_a_top_level_null_is_absent_never_the_text_none(key: str, null: Any) -> None:
    name = next(n for n, f in StackSettings.model_fields.items() if f.alias == key)
    default = DEFAULTS["production"].get(key, StackSettings.model_fields[name].default)
    value = getattr(accepted({key: null}), name)
    assert value == default and value != "None"


def test_a_null_stack_file_value_reaches_the_settings_as_absent(tmp_path: Path) -> None:
    # As the CLI hands it: "" (pulumi config/value.go unmarshals into a string first).
    path = tmp_path / "Pulumi.qa.yaml"
    path.write_text("config:\n  financial-planning:iamPermissionsBoundary: null\n")
    config = read_stack_file(path, "financial-planning")
    assert config == {"financial-planning:iamPermissionsBoundary": ""}
    settings = accepted(
        {"iamPermissionsBoundary": config["financial-planning:iamPermissionsBoundary"]}
    )
    assert settings.iam_permissions_boundary == DEFAULTS["production"]["iamPermissionsBoundary"]


def test_a_nested_null_where_a_string_is_required_is_refused() -> None:
    # Negative control: inside a mapping a null stays null and a required string refuses it.
    message = refused({"access": {"deployer": None}})
    # YAML's null is named as written, never as Python's None.
    assert message == "access.deployer: is empty (null): input should be a valid string"


# Patterns are explained in words (stacks/loader.py PATTERN_HINTS), never printed as regexes.
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"data": {"database": {"masterUsername": "Admin1"}}},
            "data.database.masterUsername: 'Admin1' is invalid: allowed: lower-case letters",
        ),
        (
            {"addons": {"prometheusAdapter": {"prometheusUrl": "http://Prometheus:9090"}}},
            "addons.prometheusAdapter.prometheusUrl: 'http://Prometheus:9090' is invalid: "
            "allowed: http:// or https://, then a lower-case host",
        ),
    ],
)
def test_a_pattern_refusal_says_what_is_allowed_in_words(
    values: dict[str, Any], expected: str
) -> None:
    message = refused(values)
    assert message.startswith(expected) and "pattern" not in message, message


# --- Production's request path is highly available --------------------------------------------
@pytest.mark.parametrize("addon", REQUEST_PATH_ADDONS)
def test_a_request_path_component_with_one_replica_is_refused_in_production(addon: str) -> None:
    message = refused({"addons": {addon: {"replicas": 1}}})
    assert message.startswith(f"addons.{addon}.replicas: 1 is below production's 2"), message
    # Negative control: staging may run one.
    assert accepted({"addons": {addon: {"replicas": 1}}}, "staging")


def test_external_dns_is_not_held_to_two() -> None:
    assert accepted({}).addons.external_dns.replicas == 1


# Seed (/work/shared/seeds/000_4fa7681386f36c7f.txt), "Environment-Specific Values":
# "Production ... High availability". Every service is on the request path: the edge reaches
# the API and the GraphQL gateway, and they call the rest (stacks/catalog.py, the service graph).
def test_every_service_is_on_the_request_path() -> None:
    assert request_path_services(accepted({}).services) == sorted(SERVICE_NAMES)


@pytest.mark.parametrize("replicas", [0, 1])
@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_request_path_service_scaled_by_hand_to_one_is_refused_in_production(
    service: ServiceName, replicas: int
) -> None:
    values: dict[str, Any] = {"services": {service: {"autoscaling": None, "replicas": replicas}}}
    if service == "ml-service":
        values = {"services": {service: {"replicas": replicas}}}
    if service == "financial-planning-api":
        # The only HPA on requestsPerSecond: without it the adapter has nothing to serve.
        values["addons"] = {"prometheusAdapter": {"enabled": False}}
    message = refused(values)
    assert message.startswith(f"services.{service}.replicas: {replicas} is below production's 2"), (
        message
    )
    # Negative control: staging may run one, or park it.
    assert accepted(values, "staging").services[service].replicas == replicas


def test_production_runs_two_ml_service_replicas_and_staging_one() -> None:
    # The seed gives ML no replica range ("ML Service: Manual scaling (GPU workloads)"), so
    # production's HA rule sets its minimum: two, each on its own GPU node.
    assert accepted({}).services["ml-service"].replicas == 2
    assert accepted({}, "staging").services["ml-service"].replicas == 1
    assert accepted({"services": {"ml-service": {"replicas": 3}}}).services["ml-service"]


# Seed, "Horizontal Pod Autoscaler (HPA)": "API Service: 3-50 replicas", "Banking Service:
# 3-20 replicas (critical service)".
@pytest.mark.parametrize(
    ("service", "low", "high"), [("financial-planning-api", 3, 50), ("banking-service", 3, 20)]
)
def test_production_holds_the_seeds_replica_ranges(
    service: ServiceName, low: int, high: int
) -> None:
    assert SEED_REPLICA_RANGES[service] == (low, high)
    below = {"services": {service: {"autoscaling": {"minReplicas": low - 1}}}}
    message = refused(below)
    assert message.startswith(
        f"services.{service}.autoscaling.minReplicas: {low - 1} is below the seed's range"
    ), message
    above = {"services": {service: {"autoscaling": {"maxReplicas": high + 1}}}}
    message = refused(above)
    assert message.startswith(
        f"services.{service}.autoscaling.maxReplicas: {high + 1} is above the seed's range"
    ), message
    # Negative controls: the range's own ends in production, and staging's smaller minimum.
    edges = {"services": {service: {"autoscaling": {"minReplicas": low, "maxReplicas": high}}}}
    assert accepted(edges).services[service].min_replicas == low
    assert accepted(below, "staging").services[service].min_replicas == low - 1


# --- Tags in any language --------------------------------------------------------------------
# IAM's tag pattern (botocore 1.44.8 data/iam/2010-05-08/service-2.json tagKeyType and
# tagValueType: Unicode letters, numbers, separators and _ . : / = + - @).
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("équipe", "finances"),
        ("チーム", "プラットフォーム"),
        ("فريق", "المالية"),
        ("cost centre", "٤٢"),
    ],
)
def test_unicode_letters_and_numbers_in_tags_are_accepted(key: str, value: str) -> None:
    assert accepted({"tags": {key: value}}).tags[key] == value


@pytest.mark.parametrize(("key", "value"), [("owner", "a<b>"), ("owner", "x;y"), ("a*b", "v")])
def test_tag_characters_aws_refuses_are_refused(key: str, value: str) -> None:
    assert refused({"tags": {key: value}}).startswith("tags")


# --- Istio durations -----------------------------------------------------------------------
def traffic_class() -> str:
    return str(next(iter(DEFAULTS["production"]["addons"]["mesh"]["traffic"]["classes"])))


# Istio 1.30.3: manifests/charts/base/files/crd-all.gen.yaml checks every Duration with CEL
# `duration(self) >= duration('1ms')` (CEL and jsonpb parse Go durations, time.ParseDuration),
# and pkg/config/validation/agent/validation.go ValidateDuration wants >= 1ms in whole ms.
@pytest.mark.parametrize(
    "duration", ["15m", "1h", "90s", "250ms", "1.5s", "0.5s", "1h30m", "2m30s", "2000us"]
)
def test_istio_durations_go_writes_are_accepted(duration: str) -> None:
    name = traffic_class()
    values = {
        "addons": {
            "mesh": {
                "traffic": {"classes": {name: {"outlierDetection": {"baseEjectionTime": duration}}}}
            }
        }
    }
    assert accepted(values).addons.mesh.traffic.classes[name]


@pytest.mark.parametrize(
    ("duration", "why"),
    [
        ("0s", "at least 1ms"),
        ("0.5ms", "at least 1ms"),
        ("1500us", "whole number of milliseconds"),
        ("1d", "is not a duration"),
        ("15", "is not a duration"),
        ("-1m", "is not a duration"),
        ("1.5", "is not a duration"),
    ],
)
def test_durations_istio_refuses_are_refused(duration: str, why: str) -> None:
    name = traffic_class()
    values = {
        "addons": {
            "mesh": {"traffic": {"classes": {name: {"outlierDetection": {"interval": duration}}}}}
        }
    }
    message = refused(values)
    assert message.startswith(f"addons.mesh.traffic.classes.{name}.outlierDetection.interval: ")
    assert why in message, message


def test_a_per_try_timeout_is_compared_with_the_timeout_in_milliseconds() -> None:
    # 1m30s is 90000ms: a per-try timeout of 1.5m (the same) is not below it.
    name = traffic_class()
    traffic = {"timeout": "1m30s", "retries": {"attempts": 2, "perTryTimeout": "1.5m"}}
    values = {"addons": {"mesh": {"traffic": {"classes": {name: traffic}}}}}
    assert "at or above the route's timeout 1m30s" in refused(values)
    # Negative control: a millisecond less passes that comparison (and meets the next rule).
    traffic["retries"]["perTryTimeout"] = "1m29.999s"  # type: ignore[index]
    message = refused(values)
    assert "perTryTimeout" in message and "at or above" not in message, message


# --- HPA utilization -----------------------------------------------------------------------
# kubernetes pkg/apis/autoscaling/validation/validation.go validateMetricTarget: an int32
# averageUtilization greater than 0, no upper bound (a share of requests, not of limits).
@pytest.mark.parametrize("target", [1, 100, 150, 400])
def test_hpa_utilization_above_100_is_accepted(target: int) -> None:
    values = {"services": {"user-service": {"autoscaling": {"cpuUtilization": target}}}}
    assert accepted(values).services["user-service"].autoscaling.cpu_utilization == target  # type: ignore[union-attr]


@pytest.mark.parametrize("target", [0, -5, 2**31])
def test_hpa_utilization_kubernetes_refuses_is_refused(target: int) -> None:
    values = {"services": {"user-service": {"autoscaling": {"memoryUtilization": target}}}}
    assert refused(values).startswith("services.user-service.autoscaling.memoryUtilization: ")


# --- Token issuers -------------------------------------------------------------------------
# RFC 7519 section 4.1.1 (iss is a StringOrURI, section 2) and istio pkg/config/validation
# validateJwtRule (only a non-empty issuer).
@pytest.mark.parametrize(
    "issuer", ["user-service", "financial-planning", "https://api.example.com", "urn:fp:users"]
)
def test_any_string_or_uri_is_a_token_issuer(issuer: str) -> None:
    assert accepted({"edge": {"userTokens": {"issuer": issuer}}}).edge.user_tokens.issuer == issuer


@pytest.mark.parametrize("issuer", ["", "user service", "fp:", "tab\there"])
def test_an_issuer_istio_or_rfc_7519_refuses_is_refused(issuer: str) -> None:
    assert refused({"edge": {"userTokens": {"issuer": issuer}}}).startswith(
        "edge.userTokens.issuer: "
    )


# --- Strict booleans -------------------------------------------------------------------------
# pulumi sdk/python/lib/pulumi/config.py _get_bool reads only "true"/"True"/"false"/"False";
# YAML 1.1's yes/no/on are text to it.
@pytest.mark.parametrize("text", ["yes", "no", "on", "1", "t", 1, 0])
@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"protect": "{}"}, "protect"),
        ({"edge": {"enabled": "{}"}}, "edge.enabled"),
        ({"security": {"guardDuty": "{}"}}, "security.guardDuty"),
        ({"addons": {"mesh": {"accessLogs": "{}"}}}, "addons.mesh.accessLogs"),
        ({"application": {"featureFlags": {"beta": "{}"}}}, "application.featureFlags.beta"),
    ],
)
def test_a_boolean_setting_takes_no_string_or_number(
    text: Any, values: dict[str, Any], where: str
) -> None:
    filled = yaml.safe_load(
        yaml.safe_dump(values).replace("'{}'", yaml.safe_dump(text).split("\n")[0])
    )
    message = refused(filled)
    assert message.startswith(f"{where}: "), message
    assert "is not a boolean (allowed: true or false)" in message


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("True", True), ("false", False)])
def test_the_clis_text_for_a_top_level_boolean_is_that_boolean(text: str, expected: bool) -> None:
    # pulumi Config.get_bool's reading; nested booleans arrive as JSON booleans.
    assert accepted({"protect": text}).protect is expected


def test_placeholder_images_is_strict_too() -> None:
    values = {"kubeContext": "kind-x", "imageRegistry": "localhost:5001"}
    with pytest.raises(SettingsError, match=r"^placeholderImages: 'yes' is not a boolean"):
        any_settings_from_values("development", {**values, "placeholderImages": "yes"})
    assert any_settings_from_values("development", {**values, "placeholderImages": "true"})


# --- Key paths of personas -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("access", "where"),
    [
        ({"platformAdmins": [role("a")], "sres": [role("a")]}, "access.sres[0]"),
        ({"developers": [role("d"), role("a")], "auditors": [role("a")]}, "access.auditors[0]"),
        ({"platformAdmins": [role("x"), role("deployer")]}, "access.deployer"),
    ],
)
def test_a_persona_conflict_names_the_key_path(access: dict[str, Any], where: str) -> None:
    access = {"deployer": role("deployer"), **access}
    message = refused({"access": access})
    assert message.startswith(f"{where}: "), message
    assert "is already access." in message


# --- Stack files: YAML errors, misspelt keys, empty files -----------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("config:\n  financial-planning:tags: [a, b\n", "line 3, column 1: "),
        ("config:\n\tfinancial-planning:protect: true\n", "line 2, column 1: "),
        ("config:\n  financial-planning:region: eu\x00\n", "line 2, column 32: character '\\x00'"),
        ("config:\n  financial-planning:region: {a: 1\n", "line 3, column 1: "),
    ],
)
def test_a_yaml_syntax_error_keeps_its_line_and_column(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "Pulumi.qa.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError) as caught:
        read_stack_file(path, "financial-planning")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"Pulumi.qa.yaml: {expected}"), message


@pytest.mark.parametrize(
    ("key", "guess"),
    [
        ("confg", "config"),
        ("Config", "config"),
        ("secretprovider", "secretsprovider"),
        ("zzz", None),
    ],
)
def test_a_misspelt_top_level_key_is_named_first_with_a_guess(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str, guess: str | None
) -> None:
    project = stack_file(tmp_path, f"{key}:\n  financial-planning:region: eu-west-1\n")
    assert (
        synth(["--stack", "qa", "--out", str(tmp_path / "b"), "--project-dir", str(project)]) == 1
    )
    lines = capsys.readouterr().err.splitlines()
    hint = f" (did you mean {guess!r}?)" if guess else ""
    assert lines == [
        f"synth qa: Pulumi.qa.yaml: unknown key {key!r}{hint} (allowed: config, "
        "secretsprovider, encryptedkey, encryptionsalt, environment)"
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n# still nothing\n"])
def test_an_empty_or_comment_only_stack_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    project = stack_file(tmp_path, text)
    assert (
        synth(["--stack", "qa", "--out", str(tmp_path / "b"), "--project-dir", str(project)]) == 1
    )
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("synth qa: Pulumi.qa.yaml: is empty"), lines


# The real CLI (pulumi sdk/go/common/workspace/loaders.go LoadProjectStackBytes) drops an
# unknown top-level key and hands an empty file's stack no config: the program then sees no
# settings at all. load_settings reads the stack file beside Pulumi.yaml to say why.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "confg:\n  financial-planning:region: eu-west-1\n",
            "Pulumi.production.yaml: unknown key 'confg' (did you mean 'config'?)",
        ),
        ("# only a comment\n", "Pulumi.production.yaml: is empty (only comments or blanks)"),
        ("config: {}\n", "(stack): stack 'production' has no settings: Pulumi.production.yaml"),
    ],
)
def test_the_program_names_why_the_cli_gave_it_no_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, expected: str
) -> None:
    (tmp_path / "Pulumi.production.yaml").write_text(text)
    monkeypatch.setattr("stacks.loader.PROJECT_ROOT", tmp_path)
    # What the CLI hands the program for each of these files: no config at all.
    with pytest.raises(SettingsError) as caught:
        run_stack("production", config={}, secret_keys=[])
    message = str(caught.value)
    assert "\n" not in message and message.startswith(expected), message


def test_a_good_stack_file_reads_as_before(tmp_path: Path) -> None:
    # Negative control for the three above: the same reader takes a real stack file, its
    # top-level scalars as the CLI hands them (text).
    path = tmp_path / "Pulumi.qa.yaml"
    path.write_text(
        "config:\n  financial-planning:protect: true\n  financial-planning:tags: {a: b}\n"
    )
    assert read_stack_file(path, "financial-planning") == {
        "financial-planning:protect": "true",
        "financial-planning:tags": {"a": "b"},
    }


def string_leaves(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The paths of every string in a settings mapping."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in string_leaves(item, (*path, key))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in string_leaves(item, (*path, index))]
    return [path] if isinstance(value, str) else []


def with_null(values: Any, path: tuple[str | int, ...]) -> Any:
    copied = copy.deepcopy(values)
    holder = copied
    for part in path[:-1]:
        holder = holder[part]
    holder[path[-1]] = None
    return copied


def texts(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [t for item in value.values() for t in texts(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in texts(item)]
    return [value] if isinstance(value, str) else []


FULL_PRODUCTION = deep_merge(
    DEFAULTS["production"],
    deep_merge(
        BASE,
        {
            "delivery": DELIVERY,
            "access": {"deployer": role("deployer"), "auditors": [DELIVERY["previewRole"]]},
        },
    ),
)


def test_a_null_in_place_of_any_string_setting_is_absent_or_refused_never_the_text_none() -> None:
    # The whole class: every string a complete production stack holds, one at a time, set to
    # null. Accepted: the settings hold no "None" text. Refused: a line names that key.
    assert settings_from_values("production", FULL_PRODUCTION)
    paths = string_leaves(FULL_PRODUCTION)
    assert len(paths) > 200
    outcomes = {"accepted": 0, "refused": 0}
    for path in paths:
        values = with_null(FULL_PRODUCTION, path)
        try:
            settings = settings_from_values("production", values)
        except SettingsError as error:
            where = key_path(path)
            lines = str(error).splitlines()
            # The key itself, or the mapping that holds it with the key named in the reason
            # (a model's own rule: "data.search: production needs ... (dedicatedMasterType)").
            parent = key_path(path[:-1])
            assert any(
                line.startswith(f"{where}: ")
                or (line.startswith(f"{parent}: ") and str(path[-1]) in line)
                for line in lines
            ), (where, lines)
            outcomes["refused"] += 1
            continue
        assert "None" not in texts(settings.model_dump()), path
        outcomes["accepted"] += 1
    # Negative control: both outcomes happen (a top-level null is absent, a required nested
    # string refuses it).
    assert outcomes["accepted"] and outcomes["refused"], outcomes


# --- Reserved database names -----------------------------------------------------------------
# RDS CreateDBCluster DatabaseName (Aurora PostgreSQL): "A database named postgres is always
# created ... Can't be a word reserved by the database engine". The engine's words: kwlist.h
# RESERVED_KEYWORD (user, select, table) and TYPE_FUNC_NAME_KEYWORD (left, join, verbose,
# is): gram.y's CREATE DATABASE takes a ColId, which is neither. template0/template1 exist in
# every cluster (initdb); postgres is refused as the project's choice (stacks/rules.py).
@pytest.mark.parametrize(
    "name",
    [
        "postgres",
        "template0",
        "template1",
        "rdsadmin",
        "user",
        "select",
        "table",
        "left",
        "join",
        "verbose",
        "is",
    ],
)
def test_a_database_name_the_engine_reserves_or_already_has_is_refused(name: str) -> None:
    message = refused({"data": {"database": {"databaseName": name}}})
    assert message.startswith(f"data.database.databaseName: {name!r} is "), message


# Negative control: unreserved and col_name keywords (none, between, json) are ColIds.
@pytest.mark.parametrize(
    "name", ["financial_planning", "fp", "planning_2026", "users", "none", "between", "json"]
)
def test_database_names_the_engine_takes_are_accepted(name: str) -> None:
    assert accepted({"data": {"database": {"databaseName": name}}}).data.database.database_name


# --- Ranges no internet client comes from ----------------------------------------------------
# IANA IPv4 Special-Purpose Address Registry (Globally Reachable: False), each row's RFC.
UNROUTED = [
    ("0.0.0.0/8", "RFC 791"),
    ("100.64.0.0/10", "RFC 6598"),
    ("100.100.0.0/16", "RFC 6598"),
    ("127.0.0.0/8", "RFC 1122"),
    ("169.254.169.254/32", "RFC 3927"),
    ("192.0.0.0/29", "RFC 6890"),
    ("198.18.0.0/15", "RFC 2544"),
    ("224.0.0.0/8", "RFC 5771"),
    ("255.255.255.255/32", "RFC 1112"),
]


@pytest.mark.parametrize(("cidr", "rfc"), UNROUTED)
@pytest.mark.parametrize("key", ["endpointPublicAccessCidrs", "allowedCidrs"])
def test_a_range_the_internet_does_not_route_is_refused_in_an_allow_list(
    cidr: str, rfc: str, key: str
) -> None:
    listed = ["198.51.100.0/24", cidr]
    if key == "allowedCidrs":
        values: dict[str, Any] = {"edge": {"operatorAccess": {"allowedCidrs": listed}}}
        where = "edge.operatorAccess.allowedCidrs[1]"
    else:
        values, where = {key: listed}, f"{key}[1]"
    message = refused(values)
    assert message.startswith(f"{where}: {cidr!r} is inside "), message
    assert f"({rfc})" in message


@pytest.mark.parametrize("cidr", ["100.0.0.0/10", "100.128.0.0/9", "198.20.0.0/16", "223.0.0.0/8"])
def test_public_ranges_beside_the_unrouted_ones_are_accepted(cidr: str) -> None:
    # Negative control: the neighbours of 100.64.0.0/10, 198.18.0.0/15 and 224.0.0.0/4.
    settings = accepted({"endpointPublicAccessCidrs": [cidr]})
    assert settings.endpoint_public_access_cidrs == [cidr]


# --- Let's Encrypt's contacts: case and private-use TLDs --------------------------------------
@pytest.mark.parametrize(
    "email",
    [
        "OPS@EXAMPLE.COM",
        "ops@Example.Org",
        "ops@corp.internal",
        "ops@intranet.corp",
        "ops@nas.home",
        "ops@router.lan",
        "ops@box.localdomain",
    ],
)
def test_contacts_boulder_refuses_after_lowering_the_domain_are_refused(email: str) -> None:
    # boulder v0.20260804.0 policy/pa.go ValidEmail lowers the domain, then forbids
    # example.com/.net/.org and any domain outside the PSL's ICANN section.
    message = refused({"edge": {"acmeEmail": email}})
    assert message.startswith("edge.acmeEmail: Let's Encrypt refuses"), message


@pytest.mark.parametrize("email", ["Ops@FinancialPlanning.COM", "ops@team.onion.io"])
def test_upper_case_domains_boulder_takes_are_accepted(email: str) -> None:
    assert accepted({"edge": {"acmeEmail": email}}).edge.acme_email == email


# --- The token keys' port --------------------------------------------------------------------
@pytest.mark.parametrize("port", [15000, 15020, 15090])
def test_the_token_keys_port_is_kept_out_of_the_sidecars_range_too(port: int) -> None:
    message = refused({"edge": {"userTokens": {"jwksPort": port}}})
    assert message.startswith(f"edge.userTokens.jwksPort: {port} is inside 15000-15090"), message
