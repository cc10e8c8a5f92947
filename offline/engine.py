"""Runs the real Pulumi program for one stack under Pulumi's mock engine and records every resource.

No Pulumi CLI, provider plugin or cloud account is involved: `Pulumi.<stack>.yaml` is read
directly (secure values become placeholders, marked secret), the mocks answer with plausible
computed outputs so that the program's `apply`s run, and a `MockMonitor` subclass keeps each
registration request (type, name, parent, options and inputs) as `pulumi up` would send it.
The tests and `make synth` both go through `run_stack`.
"""

from __future__ import annotations

import asyncio
import base64
import difflib
import hashlib
import json
import runpy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import resource as runtime_resource
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.proto import source_pb2
from pulumi.runtime.settings import get_project, get_root_resource, get_stack
from pulumi.runtime.stack import Stack, massage, run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

PROJECT_DIR = Path(__file__).resolve().parent.parent
ACCOUNT_ID = "123456789012"
SECRET = "[secret]"
# Markers Pulumi puts into serialized property values.
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass(frozen=True)
class RecordedResource:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    protect: bool
    provider: str
    dependencies: list[str]
    ignore_changes: list[str]
    inputs: dict[str, Any]
    # Earlier URNs this resource answers to (its own aliases and those inherited from its
    # ancestors), as the engine computes them: `pulumi up` moves a resource found under one of
    # these instead of re-creating it.
    aliases: list[str] = field(default_factory=list)
    # How long `pulumi up` waits for it (create, update, delete), where the program says.
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    # The id and outputs the mocks gave it (not part of the inventory: a real deployment's
    # differ). Tests use them to tell the stack's own ARNs from foreign ones.
    id: str = ""
    state: dict[str, Any] = field(default_factory=dict)
    # Whether a replacement deletes the old resource before creating the new one (the
    # resource option; not part of the inventory, which tracks URNs and inputs).
    delete_before_replace: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "custom": self.custom,
            "protect": self.protect,
            "aliases": self.aliases,
            "customTimeouts": self.custom_timeouts,
            "provider": self.provider,
            "dependencies": self.dependencies,
            "ignoreChanges": self.ignore_changes,
            "inputs": self.inputs,
        }


@dataclass
class StackRun:
    """What one run of the program registered, plus the program's module globals."""

    project: str
    stack: str
    resources: list[RecordedResource]
    namespace: dict[str, Any] = field(default_factory=dict)
    # Outputs registered by components and by the root stack (its exports), by URN.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_type(self, type_: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str | None = None) -> RecordedResource:
        found = [r for r in self.of_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_} {name or ''}, found {len(found)}")
        return found[0]

    @property
    def exports(self) -> dict[str, Any]:
        """The stack's outputs (`pulumi.export`), as its root stack resource registered them."""
        return self.outputs[root_stack_urn(self.stack, self.project)]

    def count_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.resources:
            counts[resource.type] = counts.get(resource.type, 0) + 1
        return dict(sorted(counts.items()))


def plain(value: Any) -> Any:
    """A registered property value as JSON: secrets masked, integral floats as ints."""
    if isinstance(value, dict):
        signature = value.get(_SIG_KEY)
        if signature == _SECRET_SIG:
            inner = value.get("value")
            # A secret mapping (a Kubernetes Secret's data) keeps its keys, never its values.
            if isinstance(inner, dict) and _SIG_KEY not in inner:
                return {key: SECRET for key in inner}
            return SECRET
        if signature == _RESOURCE_SIG:
            return value.get("urn", "")
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value == _UNKNOWN:
        return "[unknown]"
    return value


ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


def make_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """The URN the Pulumi engine gives a resource.

    The type part is the parent's whole type chain (`a$b$type`) unless the parent is the root
    stack. Pulumi's own mock monitor keeps only the parent's last type and includes the stack's,
    so its URNs differ from a real deployment's; the URN snapshot needs the real ones.
    """
    qualified = type_
    if parent:
        parent_type = parent.split("::")[2]
        if parent_type != ROOT_STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


def root_stack_urn(stack: str, project: str) -> str:
    """The URN of the stack's root resource (`<project>-<stack>`, the name the SDK gives it)."""
    return make_urn(stack, project, "", ROOT_STACK_TYPE, f"{project}-{stack}")


def _urn_type_and_name(urn: str) -> tuple[str, str]:
    parts = urn.split("::")
    return parts[2].split("$")[-1], parts[3]


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """The mock monitor, keeping every registration request it sees."""

    def __init__(self, mocks: pulumi_mocks.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[RecordedResource] = []
        # Outputs that components register, by URN (secret values masked).
        self.outputs: dict[str, dict[str, Any]] = {}
        # Every resource's aliases by URN, for the aliases its children inherit.
        self._aliases: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return make_urn(get_stack(), get_project(), parent, type_, name)

    def _collapse(self, request: Any, alias: Any) -> str:
        """One alias of `request` as a URN (the engine's collapseAliasToUrn)."""
        if alias.urn:
            return str(alias.urn)
        spec = alias.spec
        parent = "" if spec.noParent else (spec.parentUrn or request.parent)
        return make_urn(
            spec.stack or get_stack(),
            spec.project or get_project(),
            parent,
            spec.type or request.type,
            spec.name or request.name,
        )

    def _inherited(self, type_: str, name: str, parent_name: str, parent_alias: str) -> str:
        # A child named "<parent>-x" is assumed to follow its parent's name (engine convention).
        if name.startswith(parent_name):
            name = _urn_type_and_name(parent_alias)[1] + name[len(parent_name) :]
        return f"{parent_alias.rsplit('::', 1)[0]}${type_}::{name}"

    def aliases_of(self, request: Any) -> list[str]:
        """The engine's generateAliases: own aliases, then those multiplied out of the parent's."""
        own = [self._collapse(request, alias) for alias in request.aliases]
        found = list(own)
        parent_aliases = self._aliases.get(request.parent, [])
        parent_name = request.parent.rsplit("::", 1)[-1] if request.parent else ""
        for parent_alias in parent_aliases:
            found.append(self._inherited(request.type, request.name, parent_name, parent_alias))
            for alias in own:
                alias_type, alias_name = _urn_type_and_name(alias)
                found.append(self._inherited(alias_type, alias_name, parent_name, parent_alias))
        return sorted(set(found))

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != ROOT_STACK_TYPE:
            aliases = self.aliases_of(request)
            with self._lock:
                if response.urn in self._aliases:
                    # The engine refuses a second resource with the same URN; so does this.
                    raise ValueError(f"duplicate URN {response.urn}: two resources share it")
                self._aliases[response.urn] = aliases
            record = RecordedResource(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                protect=bool(request.protect),
                provider=request.provider,
                dependencies=sorted(request.dependencies),
                ignore_changes=list(request.ignoreChanges),
                # MessageToDict, not rpc.deserialize_properties: this runs on an executor
                # thread, where deserializing resource references needs an event loop.
                inputs=plain(MessageToDict(request.object)),
                aliases=aliases,
                custom_timeouts={
                    key: value
                    for key in ("create", "update", "delete")
                    if (value := getattr(request.customTimeouts, key, ""))
                },
                id=response.id,
                state=plain(MessageToDict(response.object)) if request.custom else {},
                delete_before_replace=bool(request.deleteBeforeReplace),
            )
            with self._lock:
                self.recorded.append(record)
        return response

    def RegisterResourceOutputs(self, request: Any) -> Any:
        with self._lock:
            self.outputs[request.urn] = plain(MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


EC2_ARN_KINDS = {
    "aws:ec2/vpc:Vpc": "vpc",
    "aws:ec2/subnet:Subnet": "subnet",
    "aws:ec2/securityGroup:SecurityGroup": "security-group",
}


def _stable_hex(*parts: str, length: int = 17) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


# What GetAddonVersion answers offline, in EKS's version format (vX.Y.Z-eksbuild.N): kube-proxy
# and CoreDNS have a line per Kubernetes minor (EKS User Guide, "Manage kube-proxy" and "Manage
# CoreDNS" version tables), the other add-ons one line across minors.
_ADDON_LINES = {
    "vpc-cni": "v1.20.4-eksbuild.2",
    "eks-pod-identity-agent": "v1.3.9-eksbuild.3",
    "aws-ebs-csi-driver": "v1.50.1-eksbuild.1",
    "aws-guardduty-agent": "v1.12.1-eksbuild.2",
}
_COREDNS_BY_MINOR = {"1.33": "v1.12.1-eksbuild.2", "1.34": "v1.12.4-eksbuild.1"}


def offline_addon_version(addon: str, minor: str) -> str:
    """A plausible default version of a managed add-on for a Kubernetes minor."""
    if addon == "kube-proxy":
        return f"v{minor}.0-eksbuild.1"
    if addon == "coredns":
        return _COREDNS_BY_MINOR.get(minor, "v1.13.1-eksbuild.1")
    return _ADDON_LINES.get(addon, "v1.0.0-eksbuild.1")


class PlatformMocks(pulumi_mocks.Mocks):
    """Plausible computed outputs for the resources and invokes the program reads."""

    def __init__(self) -> None:
        self.region = "us-east-1"

    def call(
        self, args: pulumi_mocks.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/offline",
                "userId": "AIDAOFFLINE",
                "id": ACCOUNT_ID,
            }, []
        if args.token == "aws:eks/getAddonVersion:getAddonVersion":
            addon, minor = args.args["addonName"], args.args["kubernetesVersion"]
            return {
                "addonName": addon,
                "kubernetesVersion": minor,
                "mostRecent": bool(args.args.get("mostRecent")),
                "version": offline_addon_version(addon, minor),
                "id": addon,
                "region": self.region,
            }, []
        raise NotImplementedError(f"no offline answer for invoke {args.token}")

    def new_resource(self, args: pulumi_mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        if args.typ == "pulumi:providers:aws" and inputs.get("region"):
            self.region = inputs["region"]
        resource_id = f"{args.name}-{_stable_hex(args.typ, args.name, length=8)}"
        outputs = {**inputs, **self.computed_outputs(args.typ, args.name, inputs, resource_id)}
        return resource_id, outputs

    @staticmethod
    def cluster_security_group_id(cluster_resource_name: str) -> str:
        """The security group EKS would create for the cluster (and attach to its nodes)."""
        return f"sg-{_stable_hex(cluster_resource_name)}"

    def computed_outputs(
        self, typ: str, name: str, inputs: Mapping[str, Any], resource_id: str
    ) -> dict[str, Any]:
        # A resource may name its own region (pulumi-aws 7); else the provider's.
        region, account = inputs.get("region") or self.region, ACCOUNT_ID
        if typ == "random:index/randomPassword:RandomPassword":
            return {"result": f"offline-random-{_stable_hex(name, length=24)}"}
        if typ == "random:index/randomId:RandomId":
            return {"hex": _stable_hex(name, length=8)}
        if not typ.startswith("aws:"):
            return {}
        service = typ.split(":")[1].split("/")[0]
        physical = inputs.get("name") or resource_id
        out: dict[str, Any] = {
            "arn": f"arn:aws:{service}:{region}:{account}:{physical}",
            "name": physical,
        }
        if typ == "aws:iam/role:Role":
            out["arn"] = f"arn:aws:iam::{account}:role/{physical}"
        elif typ == "aws:kms/key:Key":
            out |= {
                "keyId": resource_id,
                "arn": f"arn:aws:kms:{region}:{account}:key/{resource_id}",
            }
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            out["arn"] = f"arn:aws:logs:{region}:{account}:log-group:{physical}"
        elif typ == "aws:ecr/repository:Repository":
            out["repositoryUrl"] = f"{account}.dkr.ecr.{region}.amazonaws.com/{physical}"
        elif typ == "aws:s3/bucket:Bucket":
            physical = inputs.get("bucket") or resource_id
            out |= {"bucket": physical, "arn": f"arn:aws:s3:::{physical}"}
        elif typ == "aws:secretsmanager/secret:Secret":
            out["arn"] = f"arn:aws:secretsmanager:{region}:{account}:secret:{physical}-AbCdEf"
        elif typ == "aws:rds/instance:Instance":
            identifier = inputs.get("identifier") or resource_id
            address = f"{identifier}.c0ffee.{region}.rds.amazonaws.com"
            out |= {
                "identifier": identifier,
                "address": address,
                "port": 5432,
                "endpoint": f"{address}:5432",
                "arn": f"arn:aws:rds:{region}:{account}:db:{identifier}",
            }
            if inputs.get("manageMasterUserPassword"):
                out["masterUserSecrets"] = [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{region}:{account}:secret:"
                        f"rds!db-{_stable_hex(name, length=12)}-AbCdEf",
                        "kmsKeyId": inputs.get("masterUserSecretKmsKeyId"),
                        "secretStatus": "active",
                    }
                ]
        elif typ == "aws:rds/cluster:Cluster":
            identifier = inputs.get("clusterIdentifier") or resource_id
            host = f"{identifier}.cluster-c0ffee.{region}.rds.amazonaws.com"
            out |= {
                "clusterIdentifier": identifier,
                "clusterResourceId": f"cluster-{_stable_hex(name, length=26).upper()}",
                "endpoint": host,
                "readerEndpoint": host.replace(".cluster-", ".cluster-ro-"),
                "port": inputs.get("port", 5432),
                "arn": f"arn:aws:rds:{region}:{account}:cluster:{identifier}",
            }
            if inputs.get("manageMasterUserPassword"):
                out["masterUserSecrets"] = [
                    {
                        "secretArn": f"arn:aws:secretsmanager:{region}:{account}:secret:"
                        f"rds!cluster-{_stable_hex(name, length=12)}-AbCdEf",
                        "kmsKeyId": inputs.get("masterUserSecretKmsKeyId"),
                        "secretStatus": "active",
                    }
                ]
        elif typ == "aws:backup/vault:Vault":
            out["arn"] = f"arn:aws:backup:{region}:{account}:backup-vault:{physical}"
        elif typ == "aws:elasticache/replicationGroup:ReplicationGroup":
            group = inputs.get("replicationGroupId") or resource_id
            out |= {
                "primaryEndpointAddress": f"master.{group}.c0ffee.use1.cache.amazonaws.com",
                "readerEndpointAddress": f"replica.{group}.c0ffee.use1.cache.amazonaws.com",
            }
        elif typ == "aws:opensearch/domain:Domain":
            domain = inputs.get("domainName") or resource_id
            out |= {
                "endpoint": f"vpc-{domain}-{_stable_hex(name, length=26)}.{region}"
                ".es.amazonaws.com",
                "arn": f"arn:aws:es:{region}:{account}:domain/{domain}",
            }
        elif typ == "aws:acm/certificate:Certificate":
            # One validation option per name; ACM derives a wildcard's from the name under it,
            # so `d` and `*.d` share a record.
            names = [inputs.get("domainName"), *inputs.get("subjectAlternativeNames", [])]
            token = _stable_hex(name, length=32)
            out |= {
                "arn": f"arn:aws:acm:{region}:{account}:certificate/{resource_id}",
                "domainValidationOptions": [
                    {
                        "domainName": domain,
                        "resourceRecordName": f"_{token}.{str(domain).removeprefix('*.')}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{token[::-1]}.acm-validations.aws.",
                    }
                    for domain in names
                ],
            }
        elif typ == "aws:route53/record:Record":
            out["fqdn"] = str(inputs.get("name", "")).rstrip(".")
        elif typ in ("aws:wafv2/webAcl:WebAcl", "aws:wafv2/ipSet:IpSet"):
            kind = "webacl" if typ.endswith("WebAcl") else "ipset"
            scope = str(inputs.get("scope", "REGIONAL")).lower()
            out["arn"] = f"arn:aws:wafv2:{region}:{account}:{scope}/{kind}/{physical}/{resource_id}"
        elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
            out["latestVersion"] = 1
        elif typ in EC2_ARN_KINDS:
            # EC2's ARN format (EC2 service authorization reference, resource types).
            out["arn"] = f"arn:aws:ec2:{region}:{account}:{EC2_ARN_KINDS[typ]}/{resource_id}"
        elif typ == "aws:codebuild/project:Project":
            out["arn"] = f"arn:aws:codebuild:{region}:{account}:project/{physical}"
        elif typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
            host_path = str(inputs.get("url", "")).removeprefix("https://")
            out["arn"] = f"arn:aws:iam::{account}:oidc-provider/{host_path}"
        elif typ == "aws:eks/cluster:Cluster":
            oidc_id = _stable_hex(name, length=32).upper()
            certificate = base64.b64encode(
                b"-----BEGIN CERTIFICATE-----\nOFFLINE\n-----END CERTIFICATE-----\n"
            ).decode()
            out |= {
                "arn": f"arn:aws:eks:{region}:{account}:cluster/{physical}",
                "endpoint": f"https://{oidc_id}.gr7.{region}.eks.amazonaws.com",
                "certificateAuthority": {"data": certificate},
                "identities": [
                    {"oidcs": [{"issuer": f"https://oidc.eks.{region}.amazonaws.com/id/{oidc_id}"}]}
                ],
                "vpcConfig": {
                    **inputs.get("vpcConfig", {}),
                    "clusterSecurityGroupId": self.cluster_security_group_id(name),
                },
            }
        elif typ == "aws:eks/nodeGroup:NodeGroup":
            group = inputs.get("nodeGroupName", name)
            out["resources"] = [
                {"autoscalingGroups": [{"name": f"eks-{group}-{_stable_hex(name, length=36)}"}]}
            ]
        return out


# Deeper than any real stack file; a bound keeps a malicious one from exhausting the stack.
MAX_YAML_DEPTH = 32


class StackFileLoader(yaml.SafeLoader):
    """YAML as the Pulumi CLI accepts a stack file: no duplicate keys, and (stricter, since a
    stack file never needs them) no anchors or aliases, which make "billion laughs" bombs."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: anchors and aliases are not allowed"
            )
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: nested deeper than {MAX_YAML_DEPTH}"
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.YAMLError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """A YAML error in one line that keeps where it is: `line L, column C: problem`."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None)
    if isinstance(error, yaml.reader.ReaderError):
        # A character YAML does not allow (a NUL byte, say): the reader counts characters.
        before = text[: error.position]
        line, column = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        character = error.character
        shown = repr(chr(character) if isinstance(character, int) else character)
        return f"line {line}, column {column}: character {shown} is not allowed in YAML"
    if mark is not None and problem:
        found = f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
        context = getattr(error, "context", None)
        return f"{found} ({context})" if context and context != problem else found
    return str(error).splitlines()[0]


def read_stack_file(path: Path, project: str) -> dict[str, Any]:
    """The `config:` mapping of a stack file, or one clear error naming the file."""
    from stacks.loader import SettingsError, unknown_stack_file_key
    from stacks.settings_base import short

    text = path.read_text()
    try:
        document = yaml.load(text, Loader=StackFileLoader)
    except yaml.YAMLError as error:
        raise SettingsError(f"{path.name}: {yaml_problem(error, text)[:300]}") from None
    if document is None:
        raise SettingsError(
            f"{path.name}: is empty (only comments or blanks): it needs a `config:` mapping "
            f"with the stack's settings ({project}:<key>: <value>)"
        )
    if not isinstance(document, dict) or not isinstance(document.get("config", {}), dict):
        raise SettingsError(f"{path.name}: must be a mapping with a `config:` mapping")
    problem = unknown_stack_file_key(document, path.name)
    if problem is not None:
        raise SettingsError(problem)
    config: dict[str, Any] = document.get("config") or {}
    for key in config:
        if not isinstance(key, str) or ":" not in key:
            raise SettingsError(
                f"{path.name}: config key {short(key)} has no namespace (write {project}:<key>)"
            )
    return {**config, **_top_level_texts(text)}


def _top_level_texts(text: str) -> dict[str, str]:
    """Each top-level config value that is a scalar, as the Pulumi CLI hands it to a program:
    its text as written (`yes` stays "yes", `True` stays "True"), and "" for a null. The CLI
    unmarshals a value into a string first (pulumi sdk/go/common/resource/config/value.go,
    unmarshalValue), and go-yaml fills a string with the scalar's text, or "" for null."""
    root = yaml.compose(text, Loader=StackFileLoader)
    texts: dict[str, str] = {}
    if not isinstance(root, yaml.MappingNode):
        return texts
    for key_node, value_node in root.value:
        if key_node.value != "config" or not isinstance(value_node, yaml.MappingNode):
            continue
        for config_key, config_value in value_node.value:
            if isinstance(config_value, yaml.ScalarNode):
                null = config_value.tag == "tag:yaml.org,2002:null"
                texts[config_key.value] = "" if null else config_value.value
    return texts


class UnknownStackError(FileNotFoundError):
    """A stack name with no stack file: the message lists the stacks there are."""


def stack_names(project_dir: Path = PROJECT_DIR) -> list[str]:
    """The stacks of the project: one `Pulumi.<stack>.yaml` each."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def unknown_stack(stack: str, project_dir: Path = PROJECT_DIR) -> str:
    """One line for a misspelt stack name: the stacks there are, and the likeliest one meant."""
    names = stack_names(project_dir)
    guess = difflib.get_close_matches(stack, names, n=1)
    return (
        f"no stack {stack!r}: the stacks are {', '.join(names) or '(none)'} "
        f"(one Pulumi.<stack>.yaml each)" + (f"; did you mean {guess[0]}?" if guess else "")
    )


def stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[dict[str, Any], list[str]]:
    """The stack file's `config:` values as YAML gives them, and the keys holding secure values.

    Secure values cannot be decrypted without the CLI; each becomes a recognisable placeholder,
    marked secret as the CLI would. A secret the file does not hold stays missing, so the
    program refuses it offline exactly as it does under the CLI.
    """
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise UnknownStackError(unknown_stack(stack, project_dir))
    values: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in read_stack_file(path, project_name(project_dir)).items():
        replaced, had_secret = _replace_secure(key, value)
        values[key] = replaced
        if had_secret:
            secret_keys.append(key)
    return values, secret_keys


def project_values(config: Mapping[str, Any], project: str) -> dict[str, Any]:
    """The values of `project`'s namespace in a stack's `config`, keyed without it (the
    settings' camelCase keys); other namespaces' keys (aws:, kubernetes:) are left out."""
    prefix = f"{project}:"
    return {
        key.removeprefix(prefix): value for key, value in config.items() if key.startswith(prefix)
    }


def secret_placeholder(key: str) -> str:
    return f"offline-placeholder-for-{key.replace(':', '-').replace('.', '-')}"


def _replace_secure(key: str, value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict) and set(value) == {"secure"}:
        return secret_placeholder(key), True
    if isinstance(value, dict):
        pairs = {k: _replace_secure(f"{key}.{k}", v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_replace_secure(f"{key}.{i}", v) for i, v in enumerate(value)]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _as_config_string(value: Any) -> str:
    # How the Pulumi CLI hands config to a program: structured values as JSON, scalars as text.
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        # go-yaml fills a string with "" for a null (pulumi config/value.go unmarshalValue):
        # never the text "None".
        return ""
    return str(value)


def project_name(project_dir: Path = PROJECT_DIR) -> str:
    return str(yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"])


def _no_stack_trace() -> source_pb2.StackTrace:
    return source_pb2.StackTrace()


# The SDK walks the Python stack at every registration to tell the engine where the resource
# was declared (`_get_stack_trace`: about a quarter of a render's time). Nothing here reads that
# position: the recording monitor keeps type, name, parent, options and inputs only. Under the
# mocks the program registers with an empty trace, as the SDK itself sends when it finds no
# user frame.
# An SDK that renames the hook must fail here, not silently lose the saving.
if not hasattr(runtime_resource, "_get_stack_trace"):
    raise ImportError("pulumi.runtime.resource._get_stack_trace is gone: update offline/engine.py")
runtime_resource._get_stack_trace = _no_stack_trace


def _register_exports() -> None:
    """Register the root stack's outputs (the program's `pulumi.export`s) once the program has
    run, as `pulumi up` does (`run_in_stack`). Under mocks the SDK makes the root stack and
    registers its outputs, still none, before the program runs (`set_mocks`,
    pulumi/runtime/mocks.py, pulumi 3.272.0), so the exports would otherwise go unrecorded."""
    root = get_root_resource()
    if isinstance(root, Stack) and root.outputs:
        root.register_outputs(massage(root.outputs, []))


def run_program(
    program: Callable[[], Any],
    *,
    project: str,
    stack: str,
    config: Mapping[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    monitor: RecordingMonitor | None = None,
) -> StackRun:
    """Run `program` under mocks with `config` (keys with namespace) and record what it registers.

    Whatever `program` returns, if a dict, becomes the run's `namespace`. Pass a `monitor` to
    keep what was registered even when the program fails.
    """
    # A clean runtime each time: config and the root stack otherwise leak between runs.
    asyncio.set_event_loop(asyncio.new_event_loop())
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(
        {key: _as_config_string(value) for key, value in (config or {}).items()}, secret_keys or []
    )
    monitor = monitor or RecordingMonitor(PlatformMocks())
    pulumi.runtime.set_mocks(
        monitor.mocks, project=project, stack=stack, preview=False, monitor=monitor
    )

    namespace: dict[str, Any] = {}

    def run() -> None:
        result = program()
        if isinstance(result, dict):
            namespace.update(result)
        _register_exports()

    settings = runtime_settings.SETTINGS
    settings.rpc_manager.clear()
    settings.outputs.clear()
    _sync_await(run_pulumi_func(run))
    resources = sorted(monitor.recorded, key=lambda r: r.urn)
    return StackRun(
        project=project,
        stack=stack,
        resources=resources,
        namespace=namespace,
        outputs=dict(monitor.outputs),
    )


def run_stack(
    stack: str,
    config: Mapping[str, Any] | None = None,
    secret_keys: list[str] | None = None,
    project_dir: Path = PROJECT_DIR,
    monitor: RecordingMonitor | None = None,
) -> StackRun:
    """Run `__main__.py` for `stack`; `config` replaces the stack file's values when given."""
    if config is None:
        config, secret_keys = stack_config(stack, project_dir)
    return run_program(
        lambda: runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__"),
        project=project_name(project_dir),
        stack=stack,
        config=config,
        secret_keys=secret_keys,
        monitor=monitor,
    )
