"""Who may use the search domain: the bootstrap's plan, the roles that hold it, the signer."""

from __future__ import annotations

import datetime
import hashlib
import importlib.util
import json
import sys
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from components.data.search_access import (
    LOG_UNINDEXED_KEY,
    SEARCH_ROLES,
    platform_retention,
    security_plan,
)
from components.workloads.search_users import SCRIPT
from offline.engine import StackRun
from tests.lookup import (
    app_objects,
    helm_release,
    inline_policy,
    irsa_role,
    objects,
    policy,
    waits_for,
)

SEARCH = "aws:opensearch/domain:Domain"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def signer() -> Any:
    # The script imports aws_sigv4 from beside it, as in the Job's volume.
    if str(SCRIPT.parent) not in sys.path:
        sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("search_security", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan_of(run: StackRun) -> list[dict[str, Any]]:
    [config] = [
        o
        for o in objects(run, "ConfigMap").values()
        if o["metadata"]["namespace"] == "search-bootstrap"
    ]
    found: list[dict[str, Any]] = json.loads(config["data"]["plan.json"])
    return found


def test_the_plan_puts_each_role_then_who_holds_it() -> None:
    plan = security_plan(
        ["arn:aws:iam::1:role/admin"],
        {"document-search": ["arn:aws:iam::1:role/d"]},
        platform_retention(log_days=30, trace_days=7),
        log_replicas=0,
    )
    assert [(s["method"], s["path"]) for s in plan] == [
        # Before the log writer's role is mapped (the shipper, installed earlier, is retrying
        # its refused writes): its first index takes the template.
        ("PUT", "/_index_template/logs"),
        ("PUT", "/logs-*/_settings"),
        ("PUT", "/_plugins/_security/api/roles/document-search"),
        ("PUT", "/_plugins/_security/api/roles/log-writer"),
        ("PUT", "/_plugins/_security/api/roles/trace-store"),
        ("PUT", "/_plugins/_security/api/rolesmapping/document-search"),
        ("PUT", "/_plugins/_security/api/rolesmapping/log-writer"),
        ("PUT", "/_plugins/_security/api/rolesmapping/trace-store"),
        ("PUT", "/_plugins/_security/api/rolesmapping/all_access"),
        # The audit configuration needs security_manager, mapped just before.
        ("PUT", "/_plugins/_security/api/rolesmapping/security_manager"),
        ("PUT", "/_plugins/_security/api/audit/config"),
        ("PUT", "/_plugins/_ism/policies/logs-retention"),
        ("POST", "/_plugins/_ism/add/logs-*"),
        ("PUT", "/_plugins/_ism/policies/traces-retention"),
        ("POST", "/_plugins/_ism/add/jaeger-*"),
    ]
    assert plan[5]["body"] == {"backend_roles": ["arn:aws:iam::1:role/d"]}
    # A role nobody holds is mapped to nobody (a mapping replaces what was there).
    assert plan[6]["body"] == {"backend_roles": []}
    # Only the ISM policies need their current version first; none without logs or traces.
    assert [s.get("upsert", False) for s in plan] == [False] * 11 + [True, False] * 2
    # Each policy is then attached to the indices written before it (none yet is fine).
    assert plan[12]["body"] == {"policy_id": "logs-retention"} and plan[12]["absent_ok"]
    # Roles, mappings and the audit log; no log template where no logs are shipped.
    assert len(security_plan([], {})) == 9
    assert [s["path"] for s in security_plan([], {}, platform_retention(None, 3))][-2] == (
        "/_plugins/_ism/policies/traces-retention"
    )
    with pytest.raises(ValueError, match="no search role"):
        security_plan([], {"trace-writer": []})


def test_the_master_user_is_the_bootstraps_role_and_administers_with_the_administrator(
    stack_run: StackRun,
) -> None:
    settings = stack_run.namespace["settings"]
    domain = stack_run.one(SEARCH).inputs
    master = domain["advancedSecurityOptions"]["masterUserOptions"]["masterUserArn"]
    [association] = [
        a for a in stack_run.of_type(ASSOCIATION) if a.inputs["namespace"] == "search-bootstrap"
    ]
    assert association.inputs["roleArn"] == master
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (
        "search-bootstrap",
        "search-bootstrap",
    )
    [role] = [r for r in stack_run.of_type("aws:iam/role:Role") if r.state["arn"] == master]
    [trust] = policy(role, "assumeRolePolicy")["Statement"]
    # EKS Pod Identity's agent assumes it and tags the session (EKS User Guide, "Create an IAM
    # role for Pod Identity": both actions, or the association's pods get no credentials).
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    assert trust["Condition"]["StringEquals"] == {
        "aws:RequestTag/eks-cluster-name": f"financial-planning-{stack_run.stack}",
        "aws:RequestTag/kubernetes-namespace": "search-bootstrap",
        "aws:RequestTag/kubernetes-service-account": "search-bootstrap",
    }
    plan = {step["path"].rsplit("/", 1)[1]: step["body"] for step in plan_of(stack_run)}
    admins = [settings.data.search.administrator_arn, master]
    assert plan["all_access"] == plan["security_manager"] == {"backend_roles": sorted(admins)}


def test_each_searching_service_holds_its_role_and_may_send_requests(stack_run: StackRun) -> None:
    settings = stack_run.namespace["settings"]
    domain = stack_run.one(SEARCH).state["arn"]
    searching = {n for n, s in settings.services.items() if "search" in s.data_stores}
    assert searching == {"financial-planning-api", "document-service"}
    plan = {step["path"].rsplit("/", 1)[1]: step["body"] for step in plan_of(stack_run)}
    held = set(plan["document-search"]["backend_roles"])
    for name in app_objects(stack_run, "ServiceAccount"):
        annotations = app_objects(stack_run, "ServiceAccount")[name]["metadata"].get(
            "annotations", {}
        )
        if "eks.amazonaws.com/role-arn" not in annotations:
            assert name not in searching
            continue
        role = irsa_role(stack_run, stack_run.namespace["settings"].application.namespace, name)
        http = [s for s in inline_policy(stack_run, role) if "es:ESHttpGet" in s["Action"]]
        assert (role.state["arn"] in held) == (name in searching) == bool(http), name
        if http:
            assert http[0]["Resource"] == f"{domain}/*"
    # Every role the plan maps is one it defines.
    assert set(SEARCH_ROLES) <= set(plan)


def test_the_domain_does_not_wait_for_the_cluster(stack_run: StackRun) -> None:
    # Pod Identity, not IRSA, for the master role: the domain (about 20 minutes) is created
    # beside the cluster (about 10), not after it.
    domain = stack_run.one(SEARCH)
    cluster = stack_run.one("aws:eks/cluster:Cluster")
    assert cluster.urn not in waits_for(stack_run, domain.urn)


def test_the_job_runs_restricted_and_reruns_when_its_plan_changes(stack_run: StackRun) -> None:
    [job] = [
        o
        for o in objects(stack_run, "Job").values()
        if o["metadata"]["namespace"] == "search-bootstrap"
    ]
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["image"].startswith("public.ecr.aws/docker/library/python:3.12.")
    assert pod["serviceAccountName"] == "search-bootstrap"
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    [config] = [
        o
        for o in objects(stack_run, "ConfigMap").values()
        if o["metadata"]["namespace"] == "search-bootstrap"
    ]
    signer_text = (SCRIPT.parent / "aws_sigv4.py").read_text()
    digest = hashlib.sha256(
        (config["data"]["plan.json"] + SCRIPT.read_text() + signer_text).encode()
    ).hexdigest()[:8]
    assert job["metadata"]["name"] == config["metadata"]["name"] == f"search-users-{digest}"
    assert config["data"]["search_security.py"] == SCRIPT.read_text()
    assert config["data"]["aws_sigv4.py"] == signer_text


def test_the_scripts_signature_is_aws_signature_version_4() -> None:
    module = signer()
    credentials = module.Credentials(
        "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "TOKEN"
    )
    body = b'{"backend_roles": []}'
    url = "https://vpc-x.us-east-1.es.amazonaws.com/_plugins/_security/api/rolesmapping/all_access"
    request = AWSRequest(
        method="PUT",
        url=url,
        data=body,
        headers={
            "content-type": "application/json",
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
        },
    )
    SigV4Auth(Credentials(*credentials), "es", "us-east-1").add_auth(request)
    when = datetime.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    ours = module.signed_headers(
        "PUT",
        "vpc-x.us-east-1.es.amazonaws.com",
        "/_plugins/_security/api/rolesmapping/all_access",
        body,
        "us-east-1",
        credentials,
        when,
    )
    assert ours["authorization"] == request.headers["Authorization"]
    # A changed body is a different signature.
    other = module.signed_headers(
        "PUT", "vpc-x.us-east-1.es.amazonaws.com", "/x", body + b" ", "us-east-1", credentials, when
    )
    assert other["authorization"] != ours["authorization"]


def test_an_upsert_updates_under_the_current_version_and_a_failure_stops_the_job() -> None:
    module = signer()
    credentials = module.Credentials("A", "S", "T")
    calls: list[tuple[str, str, dict[str, str] | None]] = []
    answers = {
        ("GET", "/_plugins/_ism/policies/p"): (200, b'{"_seq_no": 7, "_primary_term": 2}'),
        ("GET", "/_plugins/_ism/policies/q"): (404, b"{}"),
    }

    def send(method: str, path: str, body: bytes, *rest: Any) -> tuple[int, bytes]:
        calls.append((method, path, rest[3] if len(rest) > 3 else None))
        return answers.get((method, path), (200, b"{}"))

    module.send = send
    plan = [
        {"method": "PUT", "path": "/_plugins/_security/api/roles/r", "body": {}},
        {"method": "PUT", "path": "/_plugins/_ism/policies/p", "body": {}, "upsert": True},
        {"method": "PUT", "path": "/_plugins/_ism/policies/q", "body": {}, "upsert": True},
    ]
    module.apply(plan, "search.example", "us-east-1", credentials)
    assert calls == [
        ("PUT", "/_plugins/_security/api/roles/r", {}),
        ("GET", "/_plugins/_ism/policies/p", None),
        ("PUT", "/_plugins/_ism/policies/p", {"if_primary_term": "2", "if_seq_no": "7"}),
        ("GET", "/_plugins/_ism/policies/q", None),
        ("PUT", "/_plugins/_ism/policies/q", {}),
    ]
    answers[("PUT", "/_plugins/_security/api/roles/r")] = (403, b"no")
    with pytest.raises(RuntimeError, match="403"):
        module.apply(plan[:1], "search.example", "us-east-1", credentials)
    # Nothing to attach a policy to yet: that step may find nothing; no other step may.
    path = "/_plugins/_ism/add/x-*"
    attach = {"method": "POST", "path": path, "body": {}, "absent_ok": True}
    answers[("POST", path)] = (404, b"index_not_found")
    module.apply([attach], "search.example", "us-east-1", credentials)
    with pytest.raises(RuntimeError, match="404"):
        module.apply([{**attach, "absent_ok": False}], "search.example", "us-east-1", credentials)


def test_a_signed_query_is_aws_signature_version_4_too() -> None:
    module = signer()
    credentials = module.Credentials("AKIDEXAMPLE", "secret", "TOKEN")
    body = b"{}"
    query = {"if_seq_no": "7", "if_primary_term": "2"}
    request = AWSRequest(
        method="PUT",
        url="https://d.example/_plugins/_ism/policies/p?if_primary_term=2&if_seq_no=7",
        data=body,
        headers={
            "content-type": "application/json",
            "x-amz-content-sha256": hashlib.sha256(body).hexdigest(),
        },
    )
    SigV4Auth(Credentials(*credentials), "es", "eu-west-1").add_auth(request)
    when = datetime.datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    ours = module.signed_headers(
        "PUT", "d.example", "/_plugins/_ism/policies/p", body, "eu-west-1", credentials, when, query
    )
    assert ours["authorization"] == request.headers["Authorization"]


def test_logs_are_shipped_by_their_own_role_and_kept_the_stacks_days(stack_run: StackRun) -> None:
    settings = stack_run.namespace["settings"].addons.log_shipper
    values = helm_release(stack_run, "fluent-bit").inputs["values"]
    domain = stack_run.one(SEARCH)
    output = values["config"]["outputs"]
    assert f"Host {domain.state['endpoint']}" in output
    for line in ("AWS_Auth On", "AWS_Region us-east-1", "Tls On", "Suppress_Type_Name On"):
        assert line in output, line
    assert "Logstash_Prefix logs" in output
    role = irsa_role(stack_run, "logging", "fluent-bit")
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].endswith(role.id)
    assert values["tolerations"] == [{"operator": "Exists"}]
    [http] = inline_policy(stack_run, role)
    assert http["Resource"] == f"{domain.state['arn']}/*"
    plan = {step["path"].rsplit("/", 1)[1]: step["body"] for step in plan_of(stack_run)}
    assert plan["log-writer"] == {"backend_roles": [role.state["arn"]]}
    states = {s["name"]: s for s in plan["logs-retention"]["policy"]["states"]}
    [transition] = states["hot"]["transitions"]
    assert transition == {
        "state_name": "delete",
        "conditions": {"min_index_age": f"{settings.retention_days}d"},
    }
    assert states["delete"]["actions"] == [{"delete": {}}]
    assert settings.retention_days == {"production": 30, "staging": 7}[stack_run.stack]
    assert plan["logs-retention"]["policy"]["ism_template"][0]["index_patterns"] == ["logs-*"]


def test_no_two_retention_policies_claim_an_index(stack_run: StackRun) -> None:
    """ISM refuses a policy whose ISM template matches the same index patterns as another's
    at the same priority; the platform's policies match disjoint prefixes."""
    templates = [
        (pattern, template["priority"])
        for step in plan_of(stack_run)
        if step["path"].startswith("/_plugins/_ism/policies/")
        for template in step["body"]["policy"]["ism_template"]
        for pattern in template["index_patterns"]
    ]
    assert len(templates) == 2, templates
    prefixes = [pattern.rstrip("*") for pattern, _ in templates]
    for i, first in enumerate(prefixes):
        for second in prefixes[i + 1 :]:
            assert not first.startswith(second) and not second.startswith(first)


# Requirements as literals: the log indices' replicas each stack's domain can hold (production:
# three data nodes; staging: one, where a replica could never be placed and the index would
# stay yellow).
LOG_REPLICAS = {"production": 1, "staging": 0}


def test_log_indices_get_a_template_the_domain_can_hold(stack_run: StackRun) -> None:
    steps = {s["path"]: s for s in plan_of(stack_run)}
    template = steps["/_index_template/logs"]["body"]
    assert template["index_patterns"] == ["logs-*"]
    replicas = LOG_REPLICAS[stack_run.stack]
    settings = template["template"]["settings"]["index"]
    assert settings["number_of_replicas"] == replicas
    # Indices made before the template take its (dynamic) settings too (and none yet is no
    # error).
    existing = steps["/logs-*/_settings"]
    assert existing["body"] == {"index": settings}
    assert existing["absent_ok"]
    assert stack_run.namespace["settings"].data.search.instance_count == (3 if replicas else 1)


def test_no_records_fields_can_break_anothers_mapping(stack_run: StackRun) -> None:
    """The services' JSON goes under one key (Fluent Bit's Merge_Log_Key), mapped as a single
    flat_object; nothing is mapped dynamically, so no field can clash or grow the mapping."""
    mappings = {s["path"]: s for s in plan_of(stack_run)}["/_index_template/logs"]["body"][
        "template"
    ]["mappings"]
    assert mappings["dynamic"] is False
    filters = helm_release(stack_run, "fluent-bit").inputs["values"]["config"]["filters"]
    kubernetes = filters.split("[FILTER]")[1]
    settings = dict(line.split(None, 1) for line in kubernetes.splitlines() if line.strip())
    assert settings["Name"] == "kubernetes"
    assert settings["Merge_Log"] == "On"
    key = settings["Merge_Log_Key"]
    assert mappings["properties"][key] == {"type": "flat_object"}
    assert mappings["properties"]["kubernetes"]["properties"]["labels"] == {"type": "flat_object"}
    # The whole text of strings too long to index (the shipper's Lua filter puts them there,
    # tests/addons/test_log_shipper.py): in _source, never parsed.
    assert mappings["properties"][LOG_UNINDEXED_KEY] == {"type": "object", "enabled": False}
    # Annotations are free-form keys: not shipped.
    assert settings["Annotations"] == "Off"
    # flat_object came with OpenSearch 2.7; every engine the settings allow is newer.
    from stacks.aws_facts import OPENSEARCH_VERSIONS

    assert all(
        tuple(int(n) for n in v.removeprefix("OpenSearch_").split(".")) >= (2, 7)
        for v in OPENSEARCH_VERSIONS
    )


def test_fluent_bit_does_not_read_its_own_output(stack_run: StackRun) -> None:
    values = helm_release(stack_run, "fluent-bit").inputs["values"]
    inputs = dict(
        line.split(None, 1) for line in values["config"]["inputs"].splitlines()[1:] if line.strip()
    )
    # The kubelet names container logs <pod>_<namespace>_<container>-<id>.log.
    assert inputs["Path"] == "/var/log/containers/*.log"
    assert inputs["Exclude_Path"] == "/var/log/containers/*_logging_*.log"
    assert helm_release(stack_run, "fluent-bit").inputs["namespace"] == "logging"
    # Its own errors (Trace_Error) go to its stdout, now never shipped back.
    assert "Trace_Error On" in values["config"]["outputs"]


def test_the_audit_log_is_switched_on_in_fgac(stack_run: StackRun) -> None:
    steps = {s["path"]: s for s in plan_of(stack_run)}
    audit = steps["/_plugins/_security/api/audit/config"]["body"]
    assert audit["enabled"] and audit["audit"]["enable_rest"]
    # No request bodies: the documents and logs hold personal and financial data.
    assert audit["audit"]["log_request_body"] is False
    # The master user that applies it holds security_manager (OpenSearch Service docs: the
    # audit configuration needs it).
    paths = [s["path"] for s in plan_of(stack_run)]
    assert paths.index("/_plugins/_security/api/rolesmapping/security_manager") < paths.index(
        "/_plugins/_security/api/audit/config"
    )
    master = irsa_or_pod_identity_master(stack_run)
    assert (
        master
        in steps["/_plugins/_security/api/rolesmapping/security_manager"]["body"]["backend_roles"]
    )


def irsa_or_pod_identity_master(run: StackRun) -> str:
    [association] = [
        a for a in run.of_type(ASSOCIATION) if a.inputs["namespace"] == "search-bootstrap"
    ]
    return str(association.inputs["roleArn"])


def test_the_log_indices_write_the_slow_logs_the_domain_publishes(stack_run: StackRun) -> None:
    """OpenSearch writes an index's slow logs only where its thresholds are set (all -1, off,
    by default: OpenSearch 2.19 server/src/main/java/org/opensearch/index/SearchSlowLog.java
    and IndexingSlowLog.java); the domain publishes both groups (components/data/search.py)."""
    published = {
        option["logType"] for option in stack_run.one(SEARCH).inputs["logPublishingOptions"]
    }
    assert {"SEARCH_SLOW_LOGS", "INDEX_SLOW_LOGS"} <= published
    settings = {s["path"]: s for s in plan_of(stack_run)}["/_index_template/logs"]["body"][
        "template"
    ]["settings"]["index"]
    for phase in ("search.slowlog.threshold.query", "indexing.slowlog.threshold.index"):
        assert settings[f"{phase}.warn"].endswith("s"), phase
        assert settings[f"{phase}.info"].endswith("s"), phase
