"""External Secrets Operator: delivers the stack's Secrets Manager secrets as Kubernetes Secrets.

Its IRSA role may read exactly the stack's secrets and decrypt them only through Secrets Manager.
The ClusterSecretStore it serves may be used from the consumer namespaces only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.addons.base import ClusterAddon, disruption_budget
from components.data.secrets import RemoteSecret, SecretAccess
from components.shared.conventions import (
    CONTROLLER_NODES,
    PLATFORM_PRIORITY_CLASS,
    standard_labels,
)
from components.shared.custom_resources import labelled_custom_resource
from components.shared.helm import HelmChart
from components.shared.iam import policy_document
from stacks.addon_settings import ControllerSettings

STORE_NAME = "aws-secrets-manager"


def operator_policy(region: str, key_arns: Sequence[str], secret_arns: Sequence[str]) -> str:
    """Read exactly these secrets, and decrypt with their keys only through Secrets Manager."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": sorted(secret_arns),
            },
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": sorted(key_arns),
                "Condition": {
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
                },
            },
        ]
    )


def external_secret(
    name: str,
    remote: RemoteSecret,
    *,
    namespace_name: pulumi.Input[str],
    store_name: str,
    opts: pulumi.ResourceOptions,
    refresh_interval: str = "1h",
) -> k8s.apiextensions.CustomResource:
    """An ExternalSecret producing Kubernetes Secret `name` from one Secrets Manager secret."""
    return k8s.apiextensions.CustomResource(
        f"external-secret-{name}",
        api_version="external-secrets.io/v1",
        kind="ExternalSecret",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=namespace_name, labels=standard_labels(name, "secrets")
        ),
        spec={
            "refreshInterval": refresh_interval,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name},
            "target": {"name": name, "creationPolicy": "Owner"},
            "data": [
                {"secretKey": key, "remoteRef": {"key": remote.remote_key, "property": key}}
                for key in remote.keys
            ],
        },
        opts=opts,
    )


@dataclass(frozen=True)
class ExternalSecrets(ClusterAddon):
    settings: ControllerSettings
    region: str
    access: SecretAccess
    # Only these namespaces may use the ClusterSecretStore.
    consumer_namespaces: Sequence[str]

    name = "eso"
    chart = HelmChart(
        chart="external-secrets",
        version="0.19.2",
        repository="https://charts.external-secrets.io",
    )
    namespace = "external-secrets-system"
    service_account = "external-secrets"
    former_types = ("financial-planning:secrets:ExternalSecretsOperator",)
    store_name = STORE_NAME

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def irsa_policy(self) -> pulumi.Output[str]:
        return pulumi.Output.all(
            keys=pulumi.Output.all(*self.access.key_arns),
            secrets=pulumi.Output.all(*self.access.secret_arns),
        ).apply(lambda arns: operator_policy(self.region, arns["keys"], arns["secrets"]))

    def values(self, role_arn: pulumi.Output[str] | None) -> dict[str, Any]:
        replicas = self.settings.replicas
        # Each of the chart's three Deployments reads its own placement: the controller's at
        # the top level, the webhook's under `webhook.*`, the cert controller's under
        # `certController.*` (chart 0.19.2, templates/deployment.yaml, webhook-deployment.yaml,
        # cert-controller-deployment.yaml: nodeSelector, priorityClassName, resources).
        placement = {
            "resources": self.settings.resources.as_values(),
            "nodeSelector": CONTROLLER_NODES,
            "priorityClassName": PLATFORM_PRIORITY_CLASS,
        }
        return {
            "installCRDs": True,
            "replicaCount": replicas,
            "leaderElect": True,
            "serviceAccount": self.irsa_service_account(role_arn),
            "podDisruptionBudget": disruption_budget(replicas),
            **placement,
            # The API server calls the webhook on every ExternalSecret and store change (its
            # failurePolicy is Fail): as many replicas as the controller, with a budget that
            # keeps one through a node drain (webhook-poddisruptionbudget.yaml).
            "webhook": {
                "replicaCount": replicas,
                "podDisruptionBudget": disruption_budget(replicas),
                **placement,
            },
            # It renews the webhook's certificate: one suffices (the chart's default).
            "certController": {"replicaCount": 1, **placement},
        }

    def install_objects(self, name: str, opts: pulumi.ResourceOptions) -> None:
        labelled_custom_resource(
            f"{name}-store",
            api_version="external-secrets.io/v1",
            kind="ClusterSecretStore",
            name=STORE_NAME,
            namespace=None,
            component="secrets",
            spec={
                # The operator's own IRSA credentials are used: no auth block, no static keys.
                "provider": {"aws": {"service": "SecretsManager", "region": self.region}},
                "conditions": [{"namespaces": list(self.consumer_namespaces)}],
            },
            opts=opts,
        )
