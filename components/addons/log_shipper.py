"""Fluent Bit: every node's container logs into the search domain, signed with its own role.

A DaemonSet on every node (GPU nodes too) tails /var/log/containers, adds each record's pod,
namespace and labels, and sends it to the domain's logs-YYYY.MM.DD index over HTTPS, signing
each request (SigV4) with its IRSA role. Fine-grained access control lets that role write the
logs-* indices only (the `log-writer` role the search bootstrap maps, see
components/data/search_access.py), and an ISM policy deletes each index after the stack's
retention. It reads the host's files: its namespace is privileged, with nothing else in it.

One index holds every namespace's logs, so no record may decide the index's mapping for the
others: each record's own JSON (a service's structured log, a sidecar's access log) goes under
one key (`fields`), which the index template (components/data/search_access.py) maps as a single
`flat_object`, and nothing else is mapped dynamically. A flat_object indexes every leaf as a
keyword with no length limit, and Lucene refuses a document with a term over 32,766 bytes: a
Lua filter (scripts/fields_within_term_limit.lua) cuts each string of `fields` to the prefix
that fits and keeps its whole text under `fields_unindexed`, which the index stores unparsed.
A type clash, the field limit or a long stack trace can then no longer get a record refused,
nor with it (after the retries) the chunk of good records it came in. Fluent Bit's own
containers are not read back: with `Trace_Error` its failures go to its stdout, which would
otherwise be shipped, fail and be logged again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi

from components.addons.base import SelfMonitoredAddon
from components.data.search_access import (
    LOG_FIELDS_KEY,
    LOG_UNINDEXED_KEY,
    search_http_policy,
)
from components.shared.conventions import PART_OF
from components.shared.helm import HelmChart
from stacks.addon_settings import LogShipperSettings

LOGGING_NAMESPACE = "logging"
METRICS_PORT = 2020
# The kubelet names each container's log file <pod>_<namespace>_<container>-<id>.log.
CONTAINER_LOGS = "/var/log/containers"
# Lucene's longest term and doc value, in bytes (IndexWriter.MAX_TERM_LENGTH, ByteBlockPool's
# block less 2; SortedSetDocValuesWriter.addValue refuses the same length): a document with a
# longer one is refused whole ("immense term").
LUCENE_MAX_TERM_BYTES = 32766
# The Lua filter: its file here, the function Fluent Bit calls, and where the chart mounts the
# `luaScripts` ConfigMap (fluent-bit chart 0.58.1 templates/_pod.tpl: /fluent-bit/scripts).
TERM_LIMIT_SCRIPT = Path(__file__).parent / "scripts" / "fields_within_term_limit.lua"
TERM_LIMIT_FUNCTION = "fields_within_term_limit"
CHART_SCRIPTS_DIR = "/fluent-bit/scripts"


def tail_input() -> str:
    """Every container's log file but those of Fluent Bit's own namespace (the chart's input
    otherwise: the docker and CRI formats, 5 MB of memory buffer per file)."""
    return "\n".join(
        [
            "[INPUT]",
            "    Name tail",
            f"    Path {CONTAINER_LOGS}/*.log",
            f"    Exclude_Path {CONTAINER_LOGS}/*_{LOGGING_NAMESPACE}_*.log",
            "    multiline.parser docker, cri",
            "    Tag kube.*",
            "    Mem_Buf_Limit 5MB",
            "    Skip_Long_Lines On",
            "",
        ]
    )


def kubernetes_filter() -> str:
    """The pod's metadata on each record; a record whose log line is a JSON map gets it parsed
    under LOG_FIELDS_KEY rather than merged into the record's top level. Annotations are left
    out (free-form keys); labels are kept (one flat_object field in the index)."""
    return "\n".join(
        [
            "[FILTER]",
            "    Name kubernetes",
            "    Match kube.*",
            "    Merge_Log On",
            f"    Merge_Log_Key {LOG_FIELDS_KEY}",
            "    Keep_Log Off",
            "    K8S-Logging.Parser On",
            "    K8S-Logging.Exclude On",
            "    Labels On",
            "    Annotations Off",
            "",
        ]
    )


def term_limit_script() -> str:
    """The Lua filter's source: the constants it shares with the index template, then its
    code."""
    header = "\n".join(
        [
            "-- Set by components/addons/log_shipper.py.",
            f'local FIELDS_KEY = "{LOG_FIELDS_KEY}"',
            f'local UNINDEXED_KEY = "{LOG_UNINDEXED_KEY}"',
            f"local MAX_TERM_BYTES = {LUCENE_MAX_TERM_BYTES}",
            "",
        ]
    )
    return header + TERM_LIMIT_SCRIPT.read_text()


def term_limit_filter() -> str:
    """Fluent Bit's lua filter (plugins/filter_lua, 5.1.1) running the script after the
    kubernetes filter has merged the record's JSON; `enable_flb_null` keeps a record's nulls
    (and lets the script write one) when it rebuilds a record."""
    return "\n".join(
        [
            "[FILTER]",
            "    Name lua",
            "    Match kube.*",
            f"    script {CHART_SCRIPTS_DIR}/{TERM_LIMIT_SCRIPT.name}",
            f"    call {TERM_LIMIT_FUNCTION}",
            "    enable_flb_null On",
            "",
        ]
    )


def opensearch_output(endpoint: str, region: str) -> str:
    """Fluent Bit's opensearch output for Amazon OpenSearch Service with IAM (its docs)."""
    return "\n".join(
        [
            "[OUTPUT]",
            "    Name opensearch",
            "    Match kube.*",
            f"    Host {endpoint}",
            "    Port 443",
            "    Tls On",
            "    AWS_Auth On",
            f"    AWS_Region {region}",
            "    Logstash_Format On",
            "    Logstash_Prefix logs",
            # OpenSearch 2 refuses a document type.
            "    Suppress_Type_Name On",
            "    Replace_Dots On",
            # A retried batch does not index its records twice.
            "    Generate_ID On",
            "    Trace_Error On",
            "    Retry_Limit 10",
            "",
        ]
    )


@dataclass(frozen=True)
class LogShipper(SelfMonitoredAddon):
    settings: LogShipperSettings
    region: str
    search_endpoint: pulumi.Input[str]
    search_domain_arn: pulumi.Input[str]

    name = "log-shipper"
    chart = HelmChart(
        chart="fluent-bit", version="0.58.1", repository="https://fluent.github.io/helm-charts"
    )
    namespace = LOGGING_NAMESPACE
    pod_security = "privileged"
    service_account = "fluent-bit"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def irsa_policy(self) -> pulumi.Output[str]:
        return search_http_policy(self.search_domain_arn)

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        return {
            "serviceAccount": self.irsa_service_account(role_arn),
            # Every node, whatever its taints; evicted last.
            "tolerations": [{"operator": "Exists"}],
            "priorityClassName": "system-node-critical",
            "resources": self.settings.resources.as_values(),
            # Root reads the log files; it needs no capability and writes only its tail
            # database under /var/log.
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "podSecurityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
            # A ConfigMap the chart mounts at CHART_SCRIPTS_DIR (and rolls the pods on change).
            "luaScripts": {TERM_LIMIT_SCRIPT.name: term_limit_script()},
            "config": {
                "inputs": tail_input(),
                "filters": kubernetes_filter() + term_limit_filter(),
                "outputs": pulumi.Output.from_input(self.search_endpoint).apply(
                    lambda endpoint: opensearch_output(endpoint, self.region)
                ),
            },
            "serviceMonitor": {
                "enabled": self.monitored,
                "selector": {"app.kubernetes.io/part-of": PART_OF},
                "interval": "60s",
            },
        }
