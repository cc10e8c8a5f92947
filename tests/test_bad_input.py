"""Bad stack files, as a careless or hurried user writes them: each refused in one line that
names the key, or rendered; never a traceback, a hang or a silent coercion."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from pydantic.alias_generators import to_snake

from offline.engine import (
    PROJECT_DIR,
    StackRun,
    UnknownStackError,
    run_stack,
    stack_config,
    unknown_stack,
)
from offline.first_up import main as first_up
from offline.synth import main as synth
from stacks import SettingsError, settings_from_values
from stacks.addon_settings import (
    REQUEST_PATH_ADDONS,
    ControllerSettings,
    IngressGatewaySettings,
    MeshSettings,
    OutboundSettings,
    PrometheusAdapterSettings,
)
from stacks.edge_settings import EdgeSettings, OperatorAccess, UserTokens, WafSettings
from stacks.merge import deep_merge
from stacks.settings import AccessSettings, StackSettings
from tests.test_settings import BASE

# A refusal: one line, a key path first, and short enough to read.
# An odd key is shown as Python writes it (repr), so a quoted segment may hold escapes.
SEGMENT = r"(?:[A-Za-z0-9_-]+|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|\(stack\))(?:\[[0-9]+\])*"
REFUSAL = re.compile(rf"^{SEGMENT}(?:\.{SEGMENT})*: .{{1,1500}}$")


def refusal(stack: str, values: dict[str, Any]) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_values(stack, deep_merge(BASE, values))
    message = str(caught.value)
    assert "\n" not in message and REFUSAL.match(message), message
    return message


ARABIC_FIVE, FULLWIDTH_FIVE = "\u0665", "\uff15"

# (class, stack values, the start of the refusal)
BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unicode", {"region": "us-east-\u0661"}, "region: 'us-east-\u0661' is invalid"),
    (
        "unicode",
        {"access": {"deployer": "arn:aws:iam::\u0661\u0662\u0663456789012:role/x"}},
        "access.deployer:",
    ),
    (
        "unicode",
        {"services": {"user-service": {"resources": {"requests": {"cpu": f"{ARABIC_FIVE}00m"}}}}},
        "services.user-service.resources.requests.cpu:",
    ),
    (
        "unicode",
        {
            "services": {
                "user-service": {"resources": {"requests": {"memory": f"{FULLWIDTH_FIVE}12Mi"}}}
            }
        },
        "services.user-service.resources.requests.memory:",
    ),
    (
        "label",
        {"nodeGroups": {"memory": {"labels": {"team": "risk team"}}}},
        "nodeGroups.memory.labels.team:",
    ),
    (
        "label",
        {"nodeGroups": {"memory": {"labels": {"team": "x" * 64}}}},
        "nodeGroups.memory.labels.team:",
    ),
    (
        "label",
        {"nodeGroups": {"memory": {"labels": {"team": "équipe"}}}},
        "nodeGroups.memory.labels.team:",
    ),
    (
        "label",
        {
            "nodeGroups": {
                "memory": {"taints": [{"key": "a", "value": "b c", "effect": "NO_SCHEDULE"}]}
            }
        },
        "nodeGroups.memory.taints[0].value:",
    ),
    (
        "label",
        {"nodeGroups": {"memory": {"labels": {"Team": "a", "team": "b"}}}},
        "nodeGroups.memory.labels: two label keys differ only in case",
    ),
    (
        "label",
        {"nodeGroups": {"memory": {"labels": {"-bad": "a"}}}},
        "nodeGroups.memory.labels: key '-bad' does not match",
    ),
    (
        "configmap",
        {"application": {"featureFlags": {"f" * 64: True}}},
        "application.featureFlags: key",
    ),
    (
        "mounts",
        {"services": {"ml-service": {"cacheVolume": {"mountPath": "/tmp"}}}},
        "services.ml-service.cacheVolume.mountPath: overlaps /tmp",
    ),
    (
        "zero",
        {"services": {"user-service": {"resources": {"requests": {"cpu": "0m"}}}}},
        "services.user-service.resources.requests.cpu: a request or limit of zero",
    ),
    ("cidr", {"vpcCidr": "127.0.0.0/16"}, "vpcCidr: '127.0.0.0/16' must be a /16 to /20 inside"),
    ("cidr", {"vpcCidr": "169.254.0.0/16"}, "vpcCidr: '169.254.0.0/16' must be"),
    ("cidr", {"vpcCidr": "0.0.0.0/16"}, "vpcCidr: '0.0.0.0/16' must be"),
    (
        "cidr",
        {"endpointPublicAccessCidrs": [f"198.51.100.{i}/32" for i in range(41)]},
        "endpointPublicAccessCidrs: 41 ranges: EKS accepts at most 40",
    ),
    (
        "region",
        {
            "region": "xx-nowhere-1",
            "availabilityZones": ["xx-nowhere-1a", "xx-nowhere-1b", "xx-nowhere-1c"],
        },
        "region: 'xx-nowhere-1' is not a commercial AWS region",
    ),
    ("region", {"region": "us-gov-west-1"}, "region:"),
    (
        "region",
        {
            "region": "cn-north-1",
            "availabilityZones": ["cn-north-1a", "cn-north-1b", "cn-north-1c"],
        },
        "region: 'cn-north-1' is not a commercial",
    ),
    (
        "region",
        {"availabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1z"]},
        "availabilityZones: 'eu-west-1z' is not a zone",
    ),
    (
        "class",
        {"data": {"database": {"instanceClass": "db.x9.huge"}}},
        "data.database.instanceClass: 'db.x9.huge' is not a known Aurora instance class",
    ),
    (
        "class",
        {"data": {"database": {"engineVersion": "16.99"}}},
        "data.database.engineVersion: '16.99' is not a known",
    ),
    (
        "class",
        {"data": {"cache": {"nodeType": "cache.t1.micro"}}},
        "data.cache.nodeType: 'cache.t1.micro' is not a known cache node type",
    ),
    (
        "class",
        {"data": {"search": {"engineVersion": "OpenSearch_9.9"}}},
        "data.search.engineVersion: 'OpenSearch_9.9' is not a known",
    ),
    (
        "class",
        {"nodeGroups": {"general": {"instanceTypes": ["m9.large"]}}},
        "nodeGroups.general.instanceTypes: 'm9.large' is not a known instance type",
    ),
    ("tags", {"tags": {"aws:owner": "x"}}, "tags: 'aws:owner' uses the prefix aws:"),
    ("tags", {"tags": {"owner": "a<b>"}}, "tags.owner:"),
    # With the environment's two default tags, 43 in all.
    ("tags", {"tags": {f"t{i}": "v" for i in range(41)}}, "tags: 43 tags leave no room"),
    (
        "principals",
        {
            "access": {
                "deployer": "arn:aws:iam::123456789012:role/a",
                "sres": ["arn:aws:iam::123456789012:role/a"],
            }
        },
        "access.sres[0]: arn:aws:iam::123456789012:role/a is already access.deployer",
    ),
    (
        "coercion",
        {"services": {"ml-service": {"replicas": True}}},
        "services.ml-service.replicas: True is a boolean, not a number",
    ),
    (
        "coercion",
        {"nodeGroups": {"gpu": {"maxSize": False}}},
        "nodeGroups.gpu.maxSize: False is a boolean",
    ),
    (
        "namespace",
        {"application": {"namespace": "kube-system"}},
        "application.namespace: 'kube-system' is Kubernetes' or the platform's own",
    ),
    ("namespace", {"application": {"namespace": "default"}}, "application.namespace: 'default' is"),
    (
        "namespace",
        {"application": {"namespace": "external-secrets-system"}},
        "application.namespace: 'external-secrets-system' is",
    ),
    (
        "order",
        {"nodeGroups": {"memory": {"instanceTypes": ["r5.large", "c5.xlarge"]}}},
        "nodeGroups.memory.instanceTypes: ['r5.large', 'c5.xlarge'] must be ordered smallest first",
    ),
    ("long", {"region": "x" * 10_000}, "region: 'xxxxxxxx"),
]


@pytest.mark.parametrize(
    ("kind", "values", "expected"), BAD, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BAD)]
)
def test_each_bad_value_is_refused_in_one_line_naming_its_key(
    kind: str, values: dict[str, Any], expected: str
) -> None:
    message = refusal("production", values)
    assert message.startswith(expected), message
    assert len(message) < 1500


def test_a_removed_image_tag_is_refused_not_defaulted() -> None:
    values = deep_merge(BASE, {})
    values["services"] = {k: v for k, v in values["services"].items() if k != "ml-service"}
    with pytest.raises(
        SettingsError, match=r"^services\.ml-service\.imageTag: required setting is missing$"
    ):
        settings_from_values("production", values)


def stack_file(tmp_path: Path, text: str) -> Path:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((PROJECT_DIR / name).read_text())
    (tmp_path / "Pulumi.qa.yaml").write_text(text)
    return tmp_path


# Nine levels of nine aliases: 9**9 nodes if expanded. The refusal names line 1, the first
# anchor, so the loader stopped before expanding anything (no timing needed to show it).
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (BOMB, "Pulumi.qa.yaml: line 1: anchors and aliases are not allowed"),
        ("- a\n- b\n", "Pulumi.qa.yaml: must be a mapping with a `config:` mapping"),
        ("just a string\n", "Pulumi.qa.yaml: must be a mapping"),
        ("config: [1, 2]\n", "Pulumi.qa.yaml: must be a mapping"),
        (
            "config:\n  x: " + "[" * 100 + "]" * 100 + "\n",
            "Pulumi.qa.yaml: line 2: nested deeper than 32",
        ),
        (
            "config:\n  financial-planning:tags: {}\n  financial-planning:tags: {}\n",
            "Pulumi.qa.yaml: line 3: duplicate key 'financial-planning:tags'",
        ),
        ("config:\n  tags: {a: b}\n", "Pulumi.qa.yaml: config key 'tags' has no namespace"),
        (
            "config:\n  financial-planing:tags: {a: b}\n",
            "'financial-planing:tags': not a setting of project 'financial-planning'",
        ),
    ],
)
def test_hostile_stack_files_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    project = stack_file(tmp_path, text)
    status = synth(
        ["--stack", "qa", "--out", str(tmp_path / "build"), "--project-dir", str(project)]
    )
    err = capsys.readouterr().err
    assert status == 1
    first = err.splitlines()[0]
    assert first.startswith("synth qa: ") and expected in first, err


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=8,
)
KEYS = st.sampled_from(
    [
        "region",
        "vpcCidr",
        "natGateways",
        "kubernetesVersion",
        "tags",
        "access",
        "nodeGroups",
        "services",
        "application",
        "addons",
        "data",
        "security",
        "retention",
        "protect",
        "availabilityZones",
        "endpointPublicAccessCidrs",
        "controlPlaneLogRetentionDays",
        "unknownThing",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYS, JSON, min_size=1, max_size=3))
@example({"access": {"'\"": None}})  # a key holding both quotes, found by a CI run
def test_generated_stack_values_are_refused_cleanly_or_accepted(values: dict[str, Any]) -> None:
    try:
        settings_from_values("staging", deep_merge(BASE, values))
    except SettingsError as error:
        for line in str(error).splitlines():
            assert REFUSAL.match(line), line


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


# Where the newer settings live (the edge, the add-ons, the mesh, access), as paths of keys
# taken from the models themselves, so a key added later is fuzzed too.
NESTED = {
    ("edge",): _keys_of(EdgeSettings),
    ("edge", "operatorAccess"): _keys_of(OperatorAccess),
    ("edge", "userTokens"): _keys_of(UserTokens),
    ("edge", "waf"): _keys_of(WafSettings),
    ("access",): _keys_of(AccessSettings),
    ("addons", "mesh"): _keys_of(MeshSettings),
    ("addons", "mesh", "outbound"): _keys_of(OutboundSettings),
    ("addons", "ingressGateway"): _keys_of(IngressGatewaySettings),
    ("addons", "rateLimiter"): _keys_of(ControllerSettings),
    ("addons", "prometheusAdapter"): _keys_of(PrometheusAdapterSettings),
    ("data", "database"): ["masterUsername", "databaseName", "instances"],
    ("data", "search"): ["instanceType", "volumeSizeGib", "administratorArn"],
    ("services", "user-service"): ["port", "replicas"],
    (): ["endpointPublicAccessCidrs", "iamPermissionsBoundary", "tags"],
}
# Values near the rules' edges, beside the generic JSON.
EDGY = st.sampled_from(
    [
        "yes",
        "true",
        "None",
        "",
        "10.0.0.0/8",
        "ops@example.com",
        "https://x.example:99999",
        "15m",
        "arn:aws:iam::123456789012:role/" + "r" * 65,
        15021,
        150,
        1,
        ["203.0.113.0/28", "203.0.113.0/28"],
        "postgres",
        "rdsadmin",
        "template1",
        "100.64.0.0/10",
        ["198.51.100.0/24", "169.254.0.0/16"],
        "ops@corp.internal",
        "OPS@EXAMPLE.COM",
        "ops@team.example.com",
        None,
        15090,
        "1h",
    ]
)


@st.composite
def nested_values(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(sorted(NESTED)))
    key = draw(st.sampled_from(NESTED[path]))
    value: dict[str, Any] = {key: draw(JSON | EDGY)}
    for part in reversed(path):
        value = {part: value}
    return value


LONG_ROLE = "arn:aws:iam::123456789012:role/" + "r" * 65


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(nested_values(), min_size=1, max_size=3))
# One value of each class of the issue, whatever the draw: the property must hold for them.
@example([{"data": {"database": {"databaseName": "postgres"}}}])
@example([{"data": {"database": {"masterUsername": "rdsadmin"}}}])
@example([{"endpointPublicAccessCidrs": ["100.64.0.0/10"]}])
@example([{"edge": {"operatorAccess": {"allowedCidrs": ["198.51.100.0/24", "169.254.0.0/16"]}}}])
@example([{"edge": {"acmeEmail": "OPS@EXAMPLE.COM"}}])
@example([{"services": {"user-service": {"port": 15090}}}])
@example([{"addons": {"rateLimiter": {"replicas": 1}}}])
@example([{"iamPermissionsBoundary": None}])
@example([{"access": {"sres": [LONG_ROLE]}}])
def test_generated_edge_addon_mesh_and_access_values_are_refused_cleanly_or_accepted(
    parts: list[dict[str, Any]],
) -> None:
    values: dict[str, Any] = {}
    for part in parts:
        values = deep_merge(values, part)
    for stack in ("staging", "production"):
        try:
            accepted = settings_from_values(stack, deep_merge(BASE, values))
        except SettingsError as error:
            for line in str(error).splitlines():
                assert REFUSAL.match(line), line
            continue
        within_the_sources_rules(accepted, given_none_text="None" in json.dumps(values))


def within_the_sources_rules(settings: StackSettings, given_none_text: bool) -> None:
    """What accepted settings hold, stated from the sources rather than from stacks/rules.py
    (the stdlib's ipaddress carries IANA's special-purpose registry)."""
    operator_access = settings.edge.operator_access
    operator = (operator_access.allowed_cidrs if operator_access else None) or []
    for cidr in [*settings.endpoint_public_access_cidrs, *operator]:
        network = ipaddress.IPv4Network(cidr)
        documentation = any(network.subnet_of(d) for d in DOCUMENTATION_RANGES)
        unrouted = network.is_private or network.is_multicast or network.is_reserved
        shared = network.subnet_of(ipaddress.IPv4Network("100.64.0.0/10"))
        assert documentation or not (unrouted or shared), cidr
        # RFC 5737 section 3: never on the public internet; only non-production examples.
        assert not (documentation and settings.environment == "production"), cidr
    access = settings.access
    delivery = settings.delivery
    principals = [
        access.deployer,
        *access.platform_admins,
        *access.sres,
        *access.developers,
        *access.auditors,
        settings.data.search.administrator_arn,
        *([delivery.preview_role] if delivery else []),
    ]
    for arn in principals:
        # IAM (botocore iam service-2.json roleNameType/userNameType): names 1-64 characters.
        assert len(arn.rsplit("/", 1)[1]) <= 64, arn
    database = settings.data.database
    # RDS reserves rdsadmin as a user (the default master user of RDS for PostgreSQL is
    # postgres: allowed); a cluster already has the databases postgres, template0, template1.
    assert database.master_username.lower() != "rdsadmin", database.master_username
    assert database.database_name.lower() not in ("rdsadmin", "postgres", "template0", "template1")
    domain = settings.edge.acme_email.rsplit("@", 1)[1].lower()
    assert domain not in ("example.com", "example.net", "example.org"), domain  # boulder
    for name, service in settings.services.items():
        assert not 15000 <= service.port <= 15090, name  # Istio's sidecar ports
    if settings.environment == "production":
        for key in REQUEST_PATH_ADDONS:
            addon = getattr(settings.addons, to_snake(key))
            assert not addon.enabled or addon.replicas >= 2, key
    if not given_none_text:
        assert "None" not in json.dumps(settings.model_dump(mode="json")), "a null became text"


# The RFC 5737 ranges (section 3), which staging's example stack file holds as placeholders.
DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_generated_stack_file_text_never_escapes_as_a_traceback(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "Pulumi.qa.yaml"
        path.write_text("config:\n  financial-planning:region: " + yaml.safe_dump(text))
        from offline.engine import read_stack_file

        try:
            read_stack_file(path, "financial-planning")
        except SettingsError as error:
            assert str(error).startswith("Pulumi.qa.yaml: ")


def test_a_good_stack_still_renders(staging: StackRun) -> None:
    # The control of the refusals above: staging's stack file as it is (the shared render).
    assert staging.resources and staging.one("aws:eks/cluster:Cluster")


def test_a_secret_the_stack_file_does_not_hold_fails_offline_as_under_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = yaml.safe_load((PROJECT_DIR / "Pulumi.staging.yaml").read_text())
    del document["config"]["financial-planning:plaidSecret"]
    project = stack_file(tmp_path, "")
    (project / "Pulumi.staging.yaml").write_text(yaml.safe_dump(document))
    status = synth(
        ["--stack", "staging", "--out", str(tmp_path / "build"), "--project-dir", str(project)]
    )
    assert status == 1
    assert capsys.readouterr().err == (
        "synth staging: plaidSecret: required secret is missing (set it with: pulumi config set "
        "--secret plaidSecret <value>)\n"
    )


def test_an_environment_that_is_no_string_is_one_refusal_not_a_crash() -> None:
    config, secret_keys = stack_config("staging")
    config["financial-planning:environment"] = {"name": "staging"}
    with pytest.raises(SettingsError) as raised:
        run_stack("staging", config=config, secret_keys=secret_keys)
    assert str(raised.value).startswith("environment: ")


@pytest.mark.parametrize(
    ("command", "name", "misspelt", "guess"),
    [(synth, "synth", "prodution", "production"), (first_up, "first-up", "stagng", "staging")],
)
def test_a_misspelt_stack_lists_the_stacks_in_one_line(
    capsys: pytest.CaptureFixture[str],
    command: Callable[[list[str]], int],
    name: str,
    misspelt: str,
    guess: str,
) -> None:
    # `make synth STACK=...`, `make first-up STACK=...`; `make diff` in tests/test_diff.py.
    assert command(["--stack", misspelt]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{name} {misspelt}: no stack {misspelt!r}: the stacks are development, production, "
        f"staging (one Pulumi.<stack>.yaml each); did you mean {guess}?"
    ]


def test_the_stack_list_is_the_stack_files(tmp_path: Path) -> None:
    for name in ("qa", "perf"):
        (tmp_path / f"Pulumi.{name}.yaml").write_text("config: {}\n")
    (tmp_path / "Pulumi.yaml").write_text("name: financial-planning\n")
    with pytest.raises(UnknownStackError, match=r"the stacks are perf, qa \(one Pulumi"):
        stack_config("q-a", tmp_path)
    # Nothing close: no guess.
    assert not unknown_stack("production", tmp_path).endswith("?")
