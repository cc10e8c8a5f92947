"""Block storage for pods: EBS CSI StorageClasses encrypted with the stack's own KMS key."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.shared.conventions import standard_labels
from components.shared.iam import policy_document
from components.shared.kms import encryption_key
from components.shared.urns import formerly

DEFAULT_STORAGE_CLASS = "gp3"
RETAINED_STORAGE_CLASS = "gp3-retain"


def ebs_csi_key_policy(key_arn: str) -> str:
    """What the EBS CSI controller needs to create and attach volumes encrypted with the key."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                "Resource": key_arn,
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
            {
                "Effect": "Allow",
                "Action": [
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                "Resource": key_arn,
            },
        ]
    )


@dataclass(frozen=True)
class VolumeEncryptionArgs:
    alias: str
    protect: bool


class VolumeEncryption(pulumi.ComponentResource):
    """The KMS key of the cluster's persistent volumes (created before the EBS CSI driver)."""

    key_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: VolumeEncryptionArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:foundation:VolumeEncryption",
            name,
            None,
            formerly(opts, "financial-planning:storage:VolumeEncryption"),
        )
        key = encryption_key(
            name,
            alias=args.alias,
            protect=args.protect,
            parent=self,
            description="Encryption of the cluster's persistent volumes",
        )
        self.key_arn = key.arn
        self.register_outputs({"keyArn": key.arn})


@dataclass(frozen=True)
class StorageClassesArgs:
    key_arn: pulumi.Input[str]


class StorageClasses(pulumi.ComponentResource):
    """gp3 (default, deleted with its claim) and gp3-retain (kept after the claim is gone)."""

    def __init__(
        self, name: str, args: StorageClassesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(
            "financial-planning:foundation:StorageClasses",
            name,
            None,
            formerly(opts, "financial-planning:storage:StorageClasses"),
        )
        for class_name, reclaim, default in (
            (DEFAULT_STORAGE_CLASS, "Delete", True),
            (RETAINED_STORAGE_CLASS, "Retain", False),
        ):
            k8s.storage.v1.StorageClass(
                f"{name}-{class_name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=class_name,
                    labels=standard_labels(class_name, "storage"),
                    annotations={
                        "storageclass.kubernetes.io/is-default-class": str(default).lower()
                    },
                ),
                provisioner="ebs.csi.aws.com",
                parameters={
                    "type": "gp3",
                    "encrypted": "true",
                    "kmsKeyId": args.key_arn,
                    "csi.storage.k8s.io/fstype": "ext4",
                },
                reclaim_policy=reclaim,
                # Bind in the zone where the pod is scheduled, not in a random one.
                volume_binding_mode="WaitForFirstConsumer",
                allow_volume_expansion=True,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({})
