"""cert-manager: the ingress gateway's certificate, from Let's Encrypt, proved by DNS-01.

Its IAM role may write only TXT records named `_acme-challenge.…` under the stack's domain, in
the stack's hosted zone (Route 53's record-set condition keys), and read the state of its
changes. The ClusterIssuer names the zone's ID, so cert-manager never lists hosted zones
(`route53:ListHostedZonesByName` is not granted). ClusterIssuers use the controller's own
(ambient, IRSA) credentials, which cert-manager allows them by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.addons.base import SelfMonitoredAddon, disruption_budget
from components.shared.conventions import (
    CONTROLLER_NODES,
    PART_OF,
    PLATFORM_PRIORITY_CLASS,
)
from components.shared.custom_resources import labelled_custom_resource
from components.shared.helm import HelmChart
from components.shared.iam import policy_document
from stacks.addon_settings import CertManagerSettings

CERT_MANAGER_NAMESPACE = "cert-manager"
# The webhook's port, which the API server calls.
WEBHOOK_PORT = 10250
METRICS_PORT = 9402
ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


def issuer_name(server: str) -> str:
    return f"letsencrypt-{server}"


def dns01_policy(zone_id: str, domain: str) -> str:
    """TXT records for ACME challenges under `domain`, in one zone; nothing else.

    Route 53 compares `route53:ChangeResourceRecordSetsNormalizedRecordNames` lowercase and
    without the trailing dot (Route 53 Developer Guide, "Using IAM policy conditions for
    fine-grained access control"). `ListResourceRecordSets` is not granted: cert-manager's
    Route 53 solver (v1.20) never calls it.
    """
    return policy_document(
        [
            {
                "Sid": "AcmeChallengeRecords",
                "Effect": "Allow",
                "Action": "route53:ChangeResourceRecordSets",
                "Resource": f"arn:aws:route53:::hostedzone/{zone_id}",
                "Condition": {
                    "ForAllValues:StringEquals": {
                        "route53:ChangeResourceRecordSetsRecordTypes": ["TXT"]
                    },
                    "ForAllValues:StringLike": {
                        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
                            f"_acme-challenge.{domain}",
                            f"_acme-challenge.*.{domain}",
                        ]
                    },
                },
            },
            {
                "Sid": "ChangeStatus",
                "Effect": "Allow",
                "Action": "route53:GetChange",
                "Resource": "arn:aws:route53:::change/*",
            },
        ]
    )


@dataclass(frozen=True)
class CertManager(SelfMonitoredAddon):
    settings: CertManagerSettings
    # The stack's hosted zone and the domain under it the certificates name.
    zone_id: str
    domain: str
    acme_email: str

    name = "cert-manager"
    chart = HelmChart(
        # v1.20: the newest minor that supports every Kubernetes version the settings allow
        # (1.32-1.35; v1.21 starts at 1.33).
        chart="cert-manager",
        version="v1.20.3",
        repository="https://charts.jetstack.io",
    )
    namespace = CERT_MANAGER_NAMESPACE
    service_account = "cert-manager"

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def irsa_policy(self) -> str:
        return dns01_policy(self.zone_id, self.domain)

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        settings = self.settings
        replicas = settings.replicas
        # The chart's controller, webhook and CA injector all run as non-root with
        # RuntimeDefault seccomp, no capabilities and a read-only root: restricted as shipped.
        placed = {
            "replicaCount": replicas,
            "podDisruptionBudget": disruption_budget(replicas),
            "resources": settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
        }
        return {
            # The CRDs are the chart's, and stay when the release goes (deleting them would
            # delete every Certificate and its Secret).
            "crds": {"enabled": True, "keep": True},
            **placed,
            "global": {"priorityClassName": PLATFORM_PRIORITY_CLASS},
            "serviceAccount": self.irsa_service_account(role_arn),
            "webhook": placed,
            "cainjector": placed,
            # Challenges are checked against public resolvers: the VPC's resolver may answer
            # from a private zone of the same name.
            "dns01RecursiveNameserversOnly": True,
            "dns01RecursiveNameservers": "1.1.1.1:53,8.8.8.8:53",
            "prometheus": {
                "enabled": True,
                "servicemonitor": {
                    "enabled": self.monitored,
                    "labels": {"app.kubernetes.io/part-of": PART_OF},
                    "interval": "60s",
                },
            },
        }

    def install_objects(self, name: str, opts: pulumi.ResourceOptions) -> None:
        """One ClusterIssuer per Let's Encrypt directory; the edge's Certificate picks one."""
        for server, url in ACME_SERVERS.items():
            issuer = issuer_name(server)
            labelled_custom_resource(
                f"{name}-{issuer}",
                api_version="cert-manager.io/v1",
                kind="ClusterIssuer",
                name=issuer,
                namespace=None,
                component="certificates",
                spec={
                    "acme": {
                        "server": url,
                        "email": self.acme_email,
                        # The ACME account's key, kept in cert-manager's namespace.
                        "privateKeySecretRef": {"name": f"{issuer}-account-key"},
                        "solvers": [
                            {
                                "selector": {"dnsZones": [self.domain]},
                                "dns01": {"route53": {"hostedZoneID": self.zone_id}},
                            }
                        ],
                    }
                },
                opts=opts,
            )
