"""external-dns: the edge's hosts as alias records of the ALB, in the stack's hosted zone.

It reads the hosts of the edge's Ingresses (the ALB's name is in their status) and keeps one
record per host, with a TXT ownership record beside it: it only ever changes or deletes what
it owns (`txtOwnerId` is the cluster), so records others made in the zone are safe. Its IAM role
may change records only in that zone and only under the stack's domain; `ListHostedZones` has
no resource-level permission (Route 53 authorization reference) and stays on "*".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import SelfMonitoredAddon
from components.addons.load_balancer_controller import EDGE_NAMESPACE
from components.shared.conventions import CONTROLLER_NODES, PART_OF, PLATFORM_PRIORITY_CLASS
from components.shared.helm import HelmChart
from components.shared.iam import policy_document
from stacks.addon_settings import ControllerSettings

METRICS_PORT = 7979
# Alias records (A and AAAA) and the registry's TXT records.
RECORD_TYPES = ["A", "AAAA", "TXT"]


def external_dns_policy(zone_id: str, domain: str) -> str:
    zone = f"arn:aws:route53:::hostedzone/{zone_id}"
    return policy_document(
        [
            {
                "Sid": "RecordsUnderTheDomain",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": zone,
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": RECORD_TYPES
                    },
                    # Normalized names: lowercase, no trailing dot (see addons/cert_manager.py).
                    "ForAllValues:StringLike": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                            domain,
                            f"*.{domain}",
                        ]
                    },
                },
            },
            {
                "Sid": "ReadTheZone",
                "Effect": "Allow",
                "Action": "route53:ListResourceRecordSets",
                "Resource": zone,
            },
            {
                "Sid": "FindTheZone",
                "Effect": "Allow",
                "Action": "route53:ListHostedZones",
                "Resource": "*",
            },
        ]
    )


@dataclass(frozen=True)
class ExternalDns(SelfMonitoredAddon):
    settings: ControllerSettings
    zone_id: str
    domain: str
    # Marks the records this cluster owns.
    owner_id: str

    name = "external-dns"
    chart = HelmChart(
        chart="external-dns",
        version="1.21.1",
        repository="https://kubernetes-sigs.github.io/external-dns/",
    )
    namespace = EDGE_NAMESPACE
    service_account = "external-dns"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def irsa_policy(self) -> str:
        return external_dns_policy(self.zone_id, self.domain)

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        settings = self.settings
        # The chart's pod and container security contexts are restricted as shipped.
        return {
            "provider": {"name": "aws"},
            # The Ingresses only (the ALB's hosts): no Service becomes a record.
            "sources": ["ingress"],
            "domainFilters": [self.domain],
            # sync: a host removed from the Ingresses loses its record (only records this
            # owner's TXT marks are ever deleted).
            "policy": "sync",
            "registry": "txt",
            "txtOwnerId": self.owner_id,
            "interval": "1m",
            "extraArgs": {"zone-id-filter": self.zone_id, "aws-zone-type": "public"},
            "serviceAccount": self.irsa_service_account(role_arn),
            "resources": settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
            "serviceMonitor": {
                "enabled": self.monitored,
                "additionalLabels": {"app.kubernetes.io/part-of": PART_OF},
                "interval": "60s",
            },
        }
