"""Each EKS stack's deploy runner: a CodeBuild project inside the stack's VPC that its workflows'
preview and deploy jobs run on, able to reach the cluster's API endpoint and little else.

The CodeBuild facts come from botocore's CodeBuild model (botocore 1.44.8, the one pinned with
the program: codebuild/2016-10-06/service-2.json): each rendered project and webhook is turned
into the CreateProject and CreateWebhook request AWS would get and checked against that
model's shapes (members, required members, enums, lengths, ranges, patterns).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import botocore.session
import pytest
from botocore.model import Shape

from components.delivery.runner import (
    BUILD_TIMEOUT_MINUTES,
    RUNNER_IMAGE,
    RUNNER_WORKFLOWS,
    runner_project_name,
)
from offline.engine import ACCOUNT_ID, RecordedResource, StackRun, stack_config
from tests.conftest import REMOVED, config_with, run_with, shared_renders
from tests.iam_properties import Document, documents, own_arns, problems
from tests.lookup import children_of, key_by_alias, policy, service_role

PROJECT = "aws:codebuild/project:Project"
WEBHOOK = "aws:codebuild/webhook:Webhook"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
STAGING_PREVIEW = "financial-planning-github-staging-preview"
CODEBUILD = botocore.session.get_session().get_service_model("codebuild")


def runner(run: StackRun) -> RecordedResource:
    return run.one("financial-planning:delivery:DeployRunner")


def part(run: StackRun, type_: str) -> RecordedResource:
    [found] = [r for r in children_of(run, runner(run)) if r.type == type_]
    return found


def problems_with(shape: Shape, value: Any, where: str = "") -> list[str]:
    """Where `value` breaks the API model's `shape` (what botocore's own validator skips:
    enums, maximum lengths and ranges, patterns; and unknown members)."""
    found: list[str] = []
    meta = shape.metadata
    if shape.type_name == "structure":
        if not isinstance(value, dict):
            return [f"{where}: not a structure"]
        found += [f"{where}.{k}: unknown member" for k in value if k not in shape.members]
        found += [f"{where}.{k}: required" for k in shape.required_members if k not in value]
        for key, item in value.items():
            if key in shape.members:
                found += problems_with(shape.members[key], item, f"{where}.{key}")
    elif shape.type_name == "list":
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        for index, item in enumerate(value):
            found += problems_with(shape.member, item, f"{where}[{index}]")
    elif shape.type_name == "string":
        if not isinstance(value, str):
            return [f"{where}: {value!r} is not a string"]
        if shape.enum and value not in shape.enum:
            found.append(f"{where}: {value!r} not one of {shape.enum}")
        if not meta.get("min", 0) <= len(value) <= meta.get("max", len(value)):
            found.append(f"{where}: length {len(value)} outside {meta}")
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            found.append(f"{where}: {value!r} does not match {meta['pattern']}")
    elif shape.type_name == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: {value!r} is not an integer"]
        if not meta.get("min", value) <= value <= meta.get("max", value):
            found.append(f"{where}: {value} outside {meta}")
    elif shape.type_name == "boolean" and not isinstance(value, bool):
        found.append(f"{where}: {value!r} is not a boolean")
    return found


def create_project_request(project: RecordedResource) -> dict[str, Any]:
    """The rendered project as CodeBuild's CreateProject request: pulumi-aws names two members
    differently (`buildTimeout` is timeoutInMinutes, `cloudwatchLogs` is cloudWatchLogs)."""
    request = copy.deepcopy(project.inputs)
    request["timeoutInMinutes"] = request.pop("buildTimeout")
    logs = request["logsConfig"]
    logs["cloudWatchLogs"] = logs.pop("cloudwatchLogs")
    return request


def create_webhook_request(webhook: RecordedResource) -> dict[str, Any]:
    """The rendered webhook as CreateWebhook's request: its filter groups are lists of filters."""
    request = copy.deepcopy(webhook.inputs)
    request["filterGroups"] = [group["filters"] for group in request["filterGroups"]]
    return request


def test_each_delivered_stack_has_one_runner_named_as_its_jobs_ask(stack_run: StackRun) -> None:
    project = part(stack_run, PROJECT)
    assert project.inputs["name"] == runner_project_name(f"financial-planning-{stack_run.stack}")
    settings = stack_run.namespace["settings"]
    assert project.inputs["source"] == {
        "type": "GITHUB",
        "location": f"https://github.com/{settings.delivery.repository}",
        "auth": {"type": "CODECONNECTIONS", "resource": settings.delivery.github_connection},
    }
    assert project.inputs["environment"]["image"] == RUNNER_IMAGE
    # Jobs run unprivileged: no Docker daemon, nothing of the host.
    assert project.inputs["environment"]["privilegedMode"] is False


def test_aws_would_accept_the_project_and_its_webhook(stack_run: StackRun) -> None:
    project = create_project_request(part(stack_run, PROJECT))
    webhook = create_webhook_request(part(stack_run, WEBHOOK))
    create_project = CODEBUILD.operation_model("CreateProject").input_shape
    create_webhook = CODEBUILD.operation_model("CreateWebhook").input_shape
    assert problems_with(create_project, project) == []
    assert problems_with(create_webhook, webhook) == []
    # The checker refuses what AWS refuses (negative controls).
    broken = copy.deepcopy(project)
    broken["environment"]["computeType"] = "BUILD_GENERAL1_HUGE"
    broken["timeoutInMinutes"] = 2161
    broken["name"] = "-runner"
    assert len(problems_with(create_project, broken)) == 3
    broken_hook = copy.deepcopy(webhook)
    broken_hook["filterGroups"][0][0]["type"] = "WORKFLOW"
    assert problems_with(create_webhook, broken_hook) != []


def test_the_webhook_starts_builds_only_for_queued_jobs_of_the_delivery_workflows(
    stack_run: StackRun,
) -> None:
    [group] = create_webhook_request(part(stack_run, WEBHOOK))["filterGroups"]
    filters = {f["type"]: f["pattern"] for f in group}
    # CodeBuild user guide, "Tutorial: Configure a CodeBuild-hosted GitHub Actions runner":
    # the webhook's event is WORKFLOW_JOB_QUEUED.
    assert filters["EVENT"] == "WORKFLOW_JOB_QUEUED"
    names = re.compile(filters["WORKFLOW_NAME"])
    assert all(names.fullmatch(n) for n in RUNNER_WORKFLOWS)
    assert not names.fullmatch("pull-request-from-a-fork-branch")
    assert not names.fullmatch("deployx")


def test_the_runner_sits_in_the_clusters_private_subnets_and_reaches_only_its_api(
    stack_run: StackRun,
) -> None:
    project = part(stack_run, PROJECT)
    vpc_config = project.inputs["vpcConfig"]
    cluster = stack_run.one("aws:eks/cluster:Cluster")
    # The nodes' private subnets (NAT out, the API endpoint's interfaces in reach), not the
    # control plane's own small subnets.
    node_subnets = {
        subnet
        for group in stack_run.of_type("aws:eks/nodeGroup:NodeGroup")
        for subnet in group.inputs["subnetIds"]
    }
    assert set(vpc_config["subnets"]) == node_subnets
    assert not set(vpc_config["subnets"]) & set(cluster.inputs["vpcConfig"]["subnetIds"])
    [vpc] = stack_run.of_type("aws:ec2/vpc:Vpc")
    assert vpc_config["vpcId"] == vpc.id
    group = part(stack_run, GROUP)
    assert vpc_config["securityGroupIds"] == [group.id]
    # The group admits nothing; out only HTTPS.
    assert not [r for r in stack_run.of_type(INGRESS) if r.inputs["securityGroupId"] == group.id]
    assert "ingress" not in group.inputs and "egress" not in group.inputs
    [egress] = [r for r in stack_run.of_type(EGRESS) if r.inputs["securityGroupId"] == group.id]
    assert (egress.inputs["ipProtocol"], egress.inputs["fromPort"], egress.inputs["toPort"]) == (
        "tcp",
        443,
        443,
    )
    # The cluster's security group (on the API endpoint's network interfaces) admits the
    # runner's group on 443 and nothing else of it.
    cluster_group = cluster.state["vpcConfig"]["clusterSecurityGroupId"]
    [to_api] = [
        r
        for r in stack_run.of_type(INGRESS)
        if r.inputs.get("referencedSecurityGroupId") == group.id
    ]
    assert to_api.inputs["securityGroupId"] == cluster_group
    assert (to_api.inputs["fromPort"], to_api.inputs["toPort"]) == (443, 443)


def test_the_projects_role_writes_its_logs_and_makes_its_network_interfaces_only(
    stack_run: StackRun,
) -> None:
    role = service_role(stack_run, "codebuild.amazonaws.com")
    assert role.parent == runner(stack_run).urn
    [document] = [
        policy(p)
        for p in stack_run.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.inputs["role"] == role.id
    ]
    actions = sorted(
        a
        for s in document["Statement"]
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    )
    assert {a.split(":")[0] for a in actions} == {"logs", "ec2", "codeconnections"}
    writes = [a for a in actions if not a.split(":")[1].startswith(("Describe", "Get"))]
    assert writes == [
        "ec2:CreateNetworkInterface",
        "ec2:CreateNetworkInterfacePermission",
        "ec2:DeleteNetworkInterface",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    # No managed policy either: a job on the runner sees these credentials.
    assert not [
        a
        for a in stack_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.id
    ]
    assert "managedPolicyArns" not in role.inputs


def runner_document(run: StackRun) -> Document:
    return next(
        d
        for d in documents(run)
        if "delivery:DeployRunner$aws:iam/rolePolicy:RolePolicy" in d.where
    )


def widened(document: Document, sid: str, change: Any) -> Document:
    body = copy.deepcopy(document.body)
    statement = next(s for s in body["Statement"] if s.get("Sid") == sid)
    change(statement)
    return Document(document.where, document.kind, body)


def test_the_interface_permission_is_held_to_the_stacks_subnets(production: StackRun) -> None:
    """Negative controls for the least-privilege rules the runner relies on."""
    own = own_arns(production)
    document = runner_document(production)
    assert problems(document, own) == []

    def another_subnet(statement: dict[str, Any]) -> None:
        statement["Condition"]["StringEquals"]["ec2:Subnet"] = [
            f"arn:aws:ec2:us-east-1:{ACCOUNT_ID}:subnet/subnet-someone-else"
        ]

    def any_interface(statement: dict[str, Any]) -> None:
        statement["Action"].append("ec2:ModifyNetworkInterfaceAttribute")

    found = problems(widened(document, "AttachThemForCodeBuild", another_subnet), own)
    assert found and all("is not this stack's" in p for p in found)
    found = problems(widened(document, "BuildNetworkInterfaces", any_interface), own)
    assert found and all("without a condition" in p for p in found)


def test_the_build_logs_are_encrypted_and_kept_like_the_control_planes(
    stack_run: StackRun,
) -> None:
    project = part(stack_run, PROJECT)
    group_name = project.inputs["logsConfig"]["cloudwatchLogs"]["groupName"]
    [log_group] = [
        g
        for g in stack_run.of_type("aws:cloudwatch/logGroup:LogGroup")
        if g.inputs["name"] == group_name
    ]
    settings = stack_run.namespace["settings"]
    assert log_group.inputs["retentionInDays"] == settings.control_plane_log_retention_days
    key = key_by_alias(stack_run, f"{project.inputs['name']}-logs")
    assert log_group.inputs["kmsKeyId"] == key.state["arn"]
    logs_grant = [s for s in policy(key)["Statement"] if "Service" in s["Principal"]]
    [condition] = [s["Condition"]["ArnLike"] for s in logs_grant]
    assert condition == {
        "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{ACCOUNT_ID}:log-group:"
        f"{group_name}"
    }
    # Protected with the stack's other logs in production.
    assert log_group.protect is (stack_run.stack == "production")


def test_the_runners_own_network_is_never_replaced_under_a_running_deploy(
    stack_run: StackRun,
) -> None:
    """The deploy job updates the stack whose runner it runs on. A replaced security group or
    rule would cut it off mid-update, and a rule created before its twin is deleted fails
    (EC2 AuthorizeSecurityGroupIngress: InvalidPermission.Duplicate). So the group and both
    rules are protected as the stack protects its stateful resources (a replacement fails
    `make diff` and the `up` instead), and the rules are deleted before they are re-created
    when a person does replace them."""
    # The stack's `protect` (true in production), as the runner's log group carries it.
    expected = part(stack_run, "aws:cloudwatch/logGroup:LogGroup").protect
    assert expected is (stack_run.stack == "production")
    for type_ in (GROUP, INGRESS, EGRESS):
        assert part(stack_run, type_).protect is expected, type_
    for type_ in (INGRESS, EGRESS):
        assert part(stack_run, type_).delete_before_replace, type_
    assert not part(stack_run, GROUP).delete_before_replace


def test_a_build_outlasts_any_job(stack_run: StackRun) -> None:
    assert part(stack_run, PROJECT).inputs["buildTimeout"] == BUILD_TIMEOUT_MINUTES


def test_a_stack_without_delivery_has_no_runner(staging: StackRun) -> None:
    run = run_with("staging", delivery=REMOVED)
    assert run.namespace["settings"].delivery is None
    assert run.of_type(PROJECT) == [] and run.of_type(WEBHOOK) == []
    assert not run.of_type("financial-planning:delivery:DeployRunner")
    # The control: staging as its stack file has it has a runner.
    assert staging.namespace["settings"].delivery is not None and staging.of_type(PROJECT)


def test_a_removed_setting_is_a_render_of_its_own() -> None:
    """`REMOVED` takes the key out of the config the render key is made of: never the base
    render's entry. A key the stack file does not hold cannot be removed (a misspelling)."""
    base_config, base_secrets = stack_config("staging")
    config, secret_keys = config_with("staging", delivery=REMOVED)
    assert "financial-planning:delivery" in base_config
    assert "financial-planning:delivery" not in config and secret_keys == base_secrets
    renders = shared_renders()
    base_key = renders.key_of("staging", base_config, base_secrets)
    assert renders.key_of("staging", config, secret_keys) != base_key
    with pytest.raises(KeyError, match="no delivry to remove"):
        config_with("staging", delivry=REMOVED)


def test_the_runner_adds_no_allow_list_entry_and_needs_none(production: StackRun) -> None:
    """The runner reaches the endpoint privately: the public allow-list is the VPN's alone."""
    cluster = production.one("aws:eks/cluster:Cluster")
    assert cluster.inputs["vpcConfig"]["endpointPrivateAccess"] is True
    settings = production.namespace["settings"]
    assert cluster.inputs["vpcConfig"].get("publicAccessCidrs", []) == list(
        settings.endpoint_public_access_cidrs
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"previewRole": "arn:aws:iam::123456789012:role/someone-else"},
            "delivery.previewRole: arn:aws:iam::123456789012:role/someone-else is not among "
            "access.auditors",
        ),
        (
            {"previewRole": f"arn:aws:iam::210987654321:role/{STAGING_PREVIEW}"},
            "delivery.previewRole: arn:aws:iam::210987654321:role/financial-planning-github-"
            "staging-preview is in account 210987654321, not the stack's 123456789012",
        ),
        (
            {"accountId": "210987654321"},
            "delivery.previewRole: arn:aws:iam::123456789012:role/financial-planning-github-"
            "staging-preview is in account 123456789012, not the stack's 210987654321",
        ),
        (
            {
                "githubConnection": "arn:aws:codeconnections:eu-west-1:123456789012:connection/"
                "0b6f2c1e-5d4a-4e3b-9c2d-1a0f9e8d7c6b"
            },
            "delivery.githubConnection: the connection is in eu-west-1, the stack in us-east-1",
        ),
        (
            # A connection made before the rename keeps its codestar-connections ARN; IAM
            # matches the runner's codeconnections: actions only to codeconnections ARNs
            # (AWS, "Connections rename - Summary of changes").
            {
                "githubConnection": "arn:aws:codestar-connections:us-east-1:123456789012:"
                "connection/0b6f2c1e-5d4a-4e3b-9c2d-1a0f9e8d7c6b"
            },
            "delivery.githubConnection: arn:aws:codestar-connections:us-east-1:123456789012:"
            "connection/0b6f2c1e-5d4a-4e3b-9c2d-1a0f9e8d7c6b has the codestar-connections prefix",
        ),
        (
            {"githubConnection": "arn:aws:codeconnections:us-east-1:123456789012:host/abc"},
            "delivery.githubConnection: 'arn:aws:codeconnections:us-east-1:123456789012:host/abc'"
            " is not a connection ARN",
        ),
        ({"repository": "example-org"}, "delivery.repository: 'example-org' is not owner/name"),
        ({"stateBucket": "Bad_Bucket"}, "delivery.stateBucket: 'Bad_Bucket' is invalid"),
        ({"runner": {"computeType": "BUILD_LAMBDA_1GB"}}, "delivery.runner.computeType:"),
        ({"accountId": 123456789012}, "delivery.accountId: 123456789012 is invalid"),
    ],
)
def test_a_wrong_delivery_setting_is_refused_in_one_line(
    change: dict[str, Any], message: str
) -> None:
    from stacks.loader import SettingsError, settings_from_values
    from stacks.merge import deep_merge

    config, _ = stack_config("staging")
    values = {
        key.split(":", 1)[1]: value
        for key, value in config.items()
        if key.startswith("financial-planning:")
    }
    values["delivery"] = deep_merge(values["delivery"], change)
    with pytest.raises(SettingsError) as raised:
        settings_from_values("staging", json.loads(json.dumps(values)))
    assert str(raised.value).count("\n") == 0
    assert str(raised.value).startswith(message), str(raised.value)


def test_the_deployer_must_be_in_the_stacks_account() -> None:
    from stacks.loader import SettingsError, settings_from_values

    config, _ = stack_config("staging")
    values = {
        key.split(":", 1)[1]: value
        for key, value in config.items()
        if key.startswith("financial-planning:")
    }
    values["access"] = {
        **values["access"],
        "deployer": "arn:aws:iam::210987654321:role/financial-planning-github-staging-deploy",
    }
    with pytest.raises(SettingsError, match=r"^access\.deployer: .* is in account 210987654321"):
        settings_from_values("staging", values)
