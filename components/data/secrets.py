"""Application secrets in AWS Secrets Manager, each encrypted with the stack's secrets key.

Values come from Pulumi secret config (and from the data tier itself, such as the Redis token).
External Secrets (an add-on) delivers them into the application namespace; no secret value is
ever in a Kubernetes manifest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.kms import encryption_key
from components.shared.passwords import generated_password
from components.shared.urns import formerly


@dataclass(frozen=True)
class RemoteSecret:
    """A Secrets Manager secret as the services see it: its remote name and its keys."""

    # A Secrets Manager name or ARN.
    remote_key: pulumi.Input[str]
    keys: Sequence[str]


@dataclass(frozen=True)
class SecretAccess:
    """What a reader of the stack's secrets must be allowed: these secrets, through these keys."""

    secret_arns: Sequence[pulumi.Input[str]]
    key_arns: Sequence[pulumi.Input[str]]


@dataclass(frozen=True)
class ApplicationSecretsArgs:
    # Secrets Manager names are "<name_prefix>/<secret>".
    name_prefix: str
    # secret -> key -> value (secret Outputs from config).
    values: Mapping[str, Mapping[str, pulumi.Output[str]]]
    recovery_window_days: int
    protect: bool
    # (secret, key) pairs whose value is a password generated here (pulumi-random).
    generated: Sequence[tuple[str, str]] = ()


class ApplicationSecrets(pulumi.ComponentResource):
    """The stack's Secrets Manager secrets and the KMS key that encrypts them."""

    key_arn: pulumi.Output[str]
    secret_arns: list[pulumi.Output[str]]
    remote: dict[str, RemoteSecret]

    def __init__(
        self, name: str, args: ApplicationSecretsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:data:ApplicationSecrets",
            name,
            None,
            formerly(opts, "financial-planning:secrets:ApplicationSecrets"),
        )
        key = encryption_key(
            f"{name}-secrets",
            alias=f"{args.name_prefix.replace('/', '-')}-secrets",
            description=f"Application secrets of {args.name_prefix}",
            protect=args.protect,
            parent=self,
        )
        self.secret_arns = []
        self.remote = {}
        all_values = {name: dict(values) for name, values in args.values.items()}
        for secret_name, key_name in args.generated:
            all_values.setdefault(secret_name, {})[key_name] = generated_password(
                f"{name}-{secret_name}-{key_name}",
                pulumi.ResourceOptions(parent=self, protect=args.protect),
            )
        for secret_name, values in all_values.items():
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
