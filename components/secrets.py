"""Application secrets: AWS Secrets Manager as the store, External Secrets Operator as delivery.

Secret values come from Pulumi secret config into Secrets Manager (KMS-encrypted). The operator,
through an IRSA role that can read only this stack's secrets, syncs them into Kubernetes Secrets
via a ClusterSecretStore usable from the application namespace only. No secret value is ever in a
Kubernetes manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.conventions import IRSA_ANNOTATION, namespace, standard_labels
from components.helm import HelmChart, helm_release
from components.iam import IrsaRole, IrsaRoleArgs, OidcIssuer, policy_document
from components.kms import encryption_key

EXTERNAL_SECRETS_CHART = HelmChart(
    chart="external-secrets",
    version="0.19.2",
    repository="https://charts.external-secrets.io",
)
OPERATOR_NAMESPACE = "external-secrets-system"
OPERATOR_SERVICE_ACCOUNT = "external-secrets"
STORE_NAME = "aws-secrets-manager"


@dataclass(frozen=True)
class RemoteSecret:
    """A Secrets Manager secret as the services see it: its remote name and its keys."""

    # A Secrets Manager name or ARN.
    remote_key: pulumi.Input[str]
    keys: Sequence[str]


@dataclass(frozen=True)
class ApplicationSecretsArgs:
    # Secrets Manager names are "<name_prefix>/<secret>".
    name_prefix: str
    # secret -> key -> value (secret Outputs from config).
    values: Mapping[str, Mapping[str, pulumi.Output[str]]]
    recovery_window_days: int
    protect: bool


class ApplicationSecrets(pulumi.ComponentResource):
    """The stack's Secrets Manager secrets and the KMS key that encrypts them."""

    key_arn: pulumi.Output[str]
    secret_arns: list[pulumi.Output[str]]
    remote: dict[str, RemoteSecret]

    def __init__(
        self, name: str, args: ApplicationSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:secrets:ApplicationSecrets", name, None, opts)
        key = encryption_key(
            f"{name}-secrets",
            alias=f"{args.name_prefix.replace('/', '-')}-secrets",
            description=f"Application secrets of {args.name_prefix}",
            protect=args.protect,
            parent=self,
        )
        self.secret_arns = []
        self.remote = {}
        for secret_name, values in args.values.items():
            remote_key = f"{args.name_prefix}/{secret_name}"
            secret = aws.secretsmanager.Secret(
                f"{name}-{secret_name}",
                name=remote_key,
                kms_key_id=key.arn,
                recovery_window_in_days=args.recovery_window_days,
                opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
            aws.secretsmanager.SecretVersion(
                f"{name}-{secret_name}",
                secret_id=secret.id,
                # Secret however the values arrived: the document must never be stored in clear.
                secret_string=pulumi.Output.secret(dict(values)).apply(
                    lambda document: json.dumps(document, sort_keys=True)
                ),
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.secret_arns.append(secret.arn)
            self.remote[secret_name] = RemoteSecret(remote_key, sorted(values))
        self.key_arn = key.arn
        self.register_outputs({"keyArn": key.arn, "secretArns": self.secret_arns})


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


@dataclass(frozen=True)
class ExternalSecretsOperatorArgs:
    region: str
    oidc: OidcIssuer
    # The secrets the operator may read, and the keys they are encrypted with.
    key_arns: Sequence[pulumi.Input[str]]
    secret_arns: Sequence[pulumi.Input[str]]
    # Only these namespaces may use the ClusterSecretStore.
    consumer_namespaces: Sequence[str]
    replicas: int


class ExternalSecretsOperator(pulumi.ComponentResource):
    """External Secrets Operator from its upstream chart, and the store it reads from."""

    store_name: str = STORE_NAME

    def __init__(
        self,
        name: str,
        args: ExternalSecretsOperatorArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("financial-planning:secrets:ExternalSecretsOperator", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ns = namespace(
            OPERATOR_NAMESPACE, pod_security="restricted", istio_injection=False, opts=child
        )
        role = IrsaRole(
            f"{name}-operator",
            IrsaRoleArgs(
                oidc=args.oidc,
                namespace=OPERATOR_NAMESPACE,
                service_account=OPERATOR_SERVICE_ACCOUNT,
                inline_policy=pulumi.Output.all(
                    keys=pulumi.Output.all(*args.key_arns),
                    secrets=pulumi.Output.all(*args.secret_arns),
                ).apply(lambda arns: operator_policy(args.region, arns["keys"], arns["secrets"])),
            ),
            opts=child,
        )
        release = helm_release(
            "external-secrets",
            EXTERNAL_SECRETS_CHART,
            namespace=ns.metadata.name,
            values={
                "installCRDs": True,
                "replicaCount": args.replicas,
                "leaderElect": True,
                "serviceAccount": {
                    "create": True,
                    "name": OPERATOR_SERVICE_ACCOUNT,
                    "annotations": {IRSA_ANNOTATION: role.role_arn},
                },
                "podDisruptionBudget": {"enabled": args.replicas > 1, "maxUnavailable": 1},
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
            },
            opts=child,
        )
        k8s.apiextensions.CustomResource(
            f"{name}-store",
            api_version="external-secrets.io/v1",
            kind="ClusterSecretStore",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=STORE_NAME, labels=standard_labels(STORE_NAME, "secrets")
            ),
            spec={
                # The operator's own IRSA credentials are used: no auth block, no static keys.
                "provider": {"aws": {"service": "SecretsManager", "region": args.region}},
                "conditions": [{"namespaces": list(args.consumer_namespaces)}],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[release]),
        )
        self.release = release
        self.register_outputs({"roleArn": role.role_arn, "storeName": STORE_NAME})


def external_secret(
    name: str,
    remote: RemoteSecret,
    *,
    namespace_name: pulumi.Input[str],
    store_name: str,
    opts: pulumi.ResourceOptions,
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
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name},
            "target": {"name": name, "creationPolicy": "Owner"},
            "data": [
                {"secretKey": key, "remoteRef": {"key": remote.remote_key, "property": key}}
                for key in remote.keys
            ],
        },
        opts=opts,
    )
