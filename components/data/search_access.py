"""Who may use the search domain, and how the program grants it.

Fine-grained access control (FGAC) decides per index, for IAM principals mapped to its roles
("backend roles"); only its master user may change those mappings, through the domain's REST
API, which no Pulumi provider here speaks. So the master user is the program's own: an IRSA
role that the search bootstrap Job (components/workloads/search_users.py) assumes to apply the
plan built here: one FGAC role per kind of reader or writer, each mapped to exactly the IAM
roles that need it, and the stack's administrator mapped to `all_access` and
`security_manager` beside the master role. The domain's access policy admits this account's
principals whose own IAM policies allow them (`search_http_statement`); FGAC then narrows each
to its indices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.shared.iam import pod_identity_trust_policy, policy_document

SEARCH_BOOTSTRAP_NAMESPACE = "search-bootstrap"
SEARCH_BOOTSTRAP_ACCOUNT = "search-bootstrap"
SECURITY_API = "/_plugins/_security/api"
# FGAC's own roles for administration (OpenSearch security plugin, predefined roles).
ADMIN_ROLES = ("all_access", "security_manager")


@dataclass(frozen=True)
class IndexAccess:
    """An FGAC role: what its holders may do on which indices."""

    index_patterns: Sequence[str]
    allowed_actions: Sequence[str]
    cluster_permissions: Sequence[str] = ()


# The container logs' indices (Fluent Bit writes logs-YYYY.MM.DD) and the policy deleting them.
LOG_INDICES = "logs-*"
LOG_RETENTION_POLICY = "logs-retention"
# Jaeger's daily indices (jaeger-span-YYYY-MM-DD, jaeger-service-..., no prefix) and theirs.
TRACE_INDICES = "jaeger-*"
TRACE_RETENTION_POLICY = "traces-retention"

# The roles the platform's readers and writers hold: the services that index and search the
# documents' text, the log shipper, and Jaeger (which writes and reads its traces).
SEARCH_ROLES: dict[str, IndexAccess] = {
    "log-writer": IndexAccess(
        index_patterns=[LOG_INDICES],
        allowed_actions=["crud", "create_index", "indices:admin/mapping/put"],
        cluster_permissions=["cluster_composite_ops", "cluster_monitor"],
    ),
    # Jaeger's requests: GET / (version), PUT _template (its mappings at start), POST _bulk
    # (which creates each day's index), _search and _msearch.
    "trace-store": IndexAccess(
        index_patterns=[TRACE_INDICES],
        allowed_actions=["crud", "create_index", "indices:admin/mapping/put"],
        cluster_permissions=[
            "cluster_composite_ops",
            "cluster_monitor",
            "cluster_manage_index_templates",
        ],
    ),
    "document-search": IndexAccess(
        index_patterns=["documents*"],
        # Read and write documents, create the index and its mappings.
        allowed_actions=["crud", "create_index", "indices:admin/mapping/put"],
        cluster_permissions=["cluster_composite_ops"],
    ),
}


def search_http_statement(domain_arn: str) -> dict[str, Any]:
    """What an IAM role needs to send requests to the domain at all (FGAC decides the rest)."""
    return {
        "Effect": "Allow",
        "Action": [
            "es:ESHttpGet",
            "es:ESHttpHead",
            "es:ESHttpPost",
            "es:ESHttpPut",
            "es:ESHttpDelete",
        ],
        "Resource": f"{domain_arn}/*",
    }


def search_http_policy(domain_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """An IAM policy of that one statement: a role that reads or writes the domain (FGAC
    decides which indices)."""
    return pulumi.Output.from_input(domain_arn).apply(
        lambda arn: policy_document([search_http_statement(arn)])
    )


@dataclass(frozen=True)
class IndexRetention:
    """How long the indices matching `index_patterns` are kept: an ISM policy deletes each
    once it is `days` old."""

    index_patterns: Sequence[str]
    days: int
    # What the indices hold, for the policy's description.
    holds: str

    def policy(self) -> dict[str, Any]:
        """Index State Management: "hot", then "delete" at `days` (OpenSearch ISM), applied to
        each new matching index by its ISM template (existing indices keep what they had)."""
        return {
            "policy": {
                "description": f"{self.holds}: deleted after {self.days} days",
                "default_state": "hot",
                "states": [
                    {
                        "name": "hot",
                        "actions": [],
                        "transitions": [
                            {
                                "state_name": "delete",
                                "conditions": {"min_index_age": f"{self.days}d"},
                            }
                        ],
                    },
                    {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
                ],
                "ism_template": [{"index_patterns": list(self.index_patterns), "priority": 100}],
            }
        }


def index_replicas(data_nodes: int) -> int:
    """Replica shards an index of the platform's writers gets: one where the domain has a
    second data node to hold it, none on a one-node domain (a replica that cannot be placed
    keeps the index yellow)."""
    return 1 if data_nodes > 1 else 0


# Where Fluent Bit puts each record's own JSON fields (its kubernetes filter's Merge_Log_Key):
# under one key, mapped as one flat_object field, so that no service's field names or types can
# collide with another's or with the shipper's own (components/addons/log_shipper.py).
LOG_FIELDS_KEY = "fields"
# Where the shipper keeps, whole, each string of LOG_FIELDS_KEY too long for the flat_object to
# index (it indexes the longest prefix that fits): in _source only, never parsed or indexed.
LOG_UNINDEXED_KEY = "fields_unindexed"
LOG_TEMPLATE = "logs"
# The slow logs the domain publishes (components/data/search.py) are written only for indices
# with thresholds: OpenSearch's index.search.slowlog.threshold.* and
# index.indexing.slowlog.threshold.* are -1 (off) unless set (server/.../index/SearchSlowLog.java
# and IndexingSlowLog.java: dynamic, index-scoped settings). Searches and bulk writes of the
# log indices slower than these are logged.
LOG_SLOWLOG_THRESHOLDS = {
    "search.slowlog.threshold.query.warn": "10s",
    "search.slowlog.threshold.query.info": "5s",
    "search.slowlog.threshold.fetch.warn": "1s",
    "search.slowlog.threshold.fetch.info": "800ms",
    "indexing.slowlog.threshold.index.warn": "10s",
    "indexing.slowlog.threshold.index.info": "5s",
}


def log_index_settings(replicas: int) -> dict[str, Any]:
    """The log indices' index settings (all dynamic: also applied to indices already there):
    the replicas the domain can hold and the slow-log thresholds."""
    return {"number_of_replicas": replicas, **LOG_SLOWLOG_THRESHOLDS}


def log_index_template(replicas: int) -> dict[str, Any]:
    """The composable index template of the container logs' daily indices: their settings and
    a fixed mapping. Only the shipper's own fields are mapped; the services' JSON sits under
    LOG_FIELDS_KEY as one `flat_object` (its leaves are searchable as keywords, whatever their
    types); strings too long to index stay whole, unparsed, under LOG_UNINDEXED_KEY; anything
    else stays in _source unindexed (`dynamic: false`). A record can then neither clash with
    another's mapping nor push the index past its field limit, nor (the shipper's Lua filter
    keeps each indexed term within Lucene's limit) carry a term too long to index."""
    keyword = {"type": "keyword", "ignore_above": 1024}
    return {
        "index_patterns": [LOG_INDICES],
        "priority": 100,
        "template": {
            "settings": {"index": log_index_settings(replicas)},
            "mappings": {
                "dynamic": False,
                "properties": {
                    "@timestamp": {"type": "date"},
                    "log": {"type": "text"},
                    "stream": keyword,
                    "kubernetes": {
                        "properties": {
                            **{
                                field: keyword
                                for field in (
                                    "namespace_name",
                                    "pod_name",
                                    "pod_id",
                                    "container_name",
                                    "container_image",
                                    "container_hash",
                                    "docker_id",
                                    "host",
                                )
                            },
                            "labels": {"type": "flat_object"},
                        }
                    },
                    LOG_FIELDS_KEY: {"type": "flat_object"},
                    LOG_UNINDEXED_KEY: {"type": "object", "enabled": False},
                },
            },
        },
    }


# Fine-grained access control's audit log (which the domain publishes as AUDIT_LOGS only once
# this is on: OpenSearch Service developer guide, "Monitoring audit logs"). REST and transport
# events, without the per-request volume of granted and merely authenticated calls; no request
# bodies (the documents and logs hold personal and financial data) and no bulk items one by one
# (every shipped log line would be an event); changes to the security configuration itself are
# recorded (compliance, internal config).
AUDIT_CONFIG: dict[str, Any] = {
    "enabled": True,
    "audit": {
        "enable_rest": True,
        "disabled_rest_categories": ["AUTHENTICATED", "GRANTED_PRIVILEGES"],
        "enable_transport": True,
        "disabled_transport_categories": ["AUTHENTICATED", "GRANTED_PRIVILEGES"],
        "resolve_bulk_requests": False,
        "log_request_body": False,
        "resolve_indices": True,
        "exclude_sensitive_headers": True,
        "ignore_users": [],
        "ignore_requests": [],
    },
    "compliance": {
        "enabled": True,
        "internal_config": True,
        "external_config": False,
        "read_metadata_only": True,
        "read_watched_fields": {},
        "read_ignore_users": [],
        "write_metadata_only": True,
        "write_log_diffs": False,
        "write_watched_indices": [],
        "write_ignore_users": [],
    },
}


def platform_retention(log_days: int | None, trace_days: int | None) -> dict[str, IndexRetention]:
    """The retention policies of the indices the platform writes (None: that writer is off)."""
    retention = {}
    if log_days is not None:
        retention[LOG_RETENTION_POLICY] = IndexRetention([LOG_INDICES], log_days, "Container logs")
    if trace_days is not None:
        retention[TRACE_RETENTION_POLICY] = IndexRetention([TRACE_INDICES], trace_days, "Traces")
    return retention


def security_plan(
    administrators: Sequence[str],
    mappings: Mapping[str, Sequence[str]],
    retention: Mapping[str, IndexRetention] | None = None,
    log_replicas: int | None = None,
) -> list[dict[str, Any]]:
    """The idempotent requests that bring FGAC to the program's state: where logs are shipped
    (`log_replicas` given) first their index template, then each role, then who holds it,
    FGAC's audit log, then each retention policy (by its id), attached to the indices already
    there.
    `administrators` are the IAM principals mapped to the admin roles (the master role among
    them: a mapping replaces what was there; `security_manager` is what the audit
    configuration needs). ISM creates a policy with a plain PUT only once: that step is an
    upsert (the script reads the current version first)."""
    unknown = sorted(set(mappings) - set(SEARCH_ROLES))
    if unknown:
        raise ValueError(f"no search role {unknown} (known: {sorted(SEARCH_ROLES)})")
    plan: list[dict[str, Any]] = []
    if log_replicas is not None:
        # First: the log shipper runs before this Job and retries its writes until its role
        # is mapped below; the first index it then creates must already take the template.
        plan.append(
            {
                "method": "PUT",
                "path": f"/_index_template/{LOG_TEMPLATE}",
                "body": log_index_template(log_replicas),
            }
        )
        # Indices made before the template existed keep their mapping but take its dynamic
        # settings (no index yet: nothing to change).
        plan.append(
            {
                "method": "PUT",
                "path": f"/{LOG_INDICES}/_settings",
                "body": {"index": log_index_settings(log_replicas)},
                "absent_ok": True,
            }
        )
    for role, access in sorted(SEARCH_ROLES.items()):
        plan.append(
            {
                "method": "PUT",
                "path": f"{SECURITY_API}/roles/{role}",
                "body": {
                    "cluster_permissions": list(access.cluster_permissions),
                    "index_permissions": [
                        {
                            "index_patterns": list(access.index_patterns),
                            "allowed_actions": list(access.allowed_actions),
                        }
                    ],
                },
            }
        )
    for role in sorted(SEARCH_ROLES):
        plan.append(
            {
                "method": "PUT",
                "path": f"{SECURITY_API}/rolesmapping/{role}",
                "body": {"backend_roles": sorted(mappings.get(role, []))},
            }
        )
    for role in ADMIN_ROLES:
        plan.append(
            {
                "method": "PUT",
                "path": f"{SECURITY_API}/rolesmapping/{role}",
                "body": {"backend_roles": sorted(set(administrators))},
            }
        )
    plan.append({"method": "PUT", "path": f"{SECURITY_API}/audit/config", "body": AUDIT_CONFIG})
    for policy_id, kept in sorted((retention or {}).items()):
        plan.append(
            {
                "method": "PUT",
                "path": f"/_plugins/_ism/policies/{policy_id}",
                "body": kept.policy(),
                "upsert": True,
            }
        )
        # The ISM template manages indices created after the policy; the writers may have
        # started first (they install before the services). This attaches the policy to
        # matching indices that have none (those with one are left alone); no index yet: 404.
        plan.append(
            {
                "method": "POST",
                "path": f"/_plugins/_ism/add/{','.join(kept.index_patterns)}",
                "body": {"policy_id": policy_id},
                "absent_ok": True,
            }
        )
    return plan


@dataclass(frozen=True)
class SearchMasterArgs:
    domain_arn: pulumi.Input[str]
    # The cluster whose search bootstrap service account gets the role (EKS Pod Identity).
    cluster_name: str
    permissions_boundary: pulumi.Input[str] | None = None


class SearchMaster(pulumi.ComponentResource):
    """The domain's master user: a role for the search bootstrap's service account, by EKS
    Pod Identity. It names no OIDC provider, so it (and the domain, the longest wait of a first
    `up`) need not wait for the cluster."""

    role_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SearchMasterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:SearchMaster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            name,
            assume_role_policy=pod_identity_trust_policy(
                args.cluster_name, SEARCH_BOOTSTRAP_NAMESPACE, SEARCH_BOOTSTRAP_ACCOUNT
            ),
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        aws.iam.RolePolicy(
            name,
            role=role.id,
            policy=search_http_policy(args.domain_arn),
            opts=child,
        )
        self.role_arn = role.arn
        self.register_outputs({"roleArn": role.arn})
