"""Disaster recovery for the database: AWS Backup copies its snapshots to a second region.

A backup plan takes a snapshot of the Aurora cluster every `everyHours` hours into a vault in
the stack's region and copies it to a vault in the recovery region, each encrypted with a KMS
key of its own region. Aurora's own continuous backups (point-in-time restore within the
retention) cover everything short of losing the region; these copies cover the region.
Restore path and RPO/RTO: docs/data.md, "Disaster recovery".

An Aurora global database would replicate continuously, but Aurora cannot manage the master
password of a global database's clusters (Aurora User Guide, "Password management with Amazon
Aurora and AWS Secrets Manager", Limitations), so snapshot copies it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.iam import managed_policy_arn, service_trust_policy
from components.shared.kms import encryption_key
from stacks.data_settings import DisasterRecovery

# What AWS Backup needs to snapshot, copy and restore Aurora clusters (AWS managed policies).
BACKUP_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
)


@dataclass(frozen=True)
class DatabaseBackupsArgs:
    # Vault, plan and key names start with it.
    name_prefix: str
    cluster_arn: pulumi.Input[str]
    # The cluster's own key encrypts the vault in its region.
    key_arn: pulumi.Input[str]
    recovery: DisasterRecovery
    protect: bool
    # The permissions boundary every IAM role of the stack carries (None: none).
    permissions_boundary: pulumi.Input[str] | None = None


class DatabaseBackups(pulumi.ComponentResource):
    recovery_vault_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: DatabaseBackupsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:DatabaseBackups", name, None, opts)
        recovery = args.recovery
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        recovery_key = encryption_key(
            f"{name}-recovery",
            alias=f"{args.name_prefix}-database-recovery",
            description=f"Copies of {args.name_prefix}'s database backups",
            protect=args.protect,
            parent=self,
            region=recovery.region,
        )
        local_vault = aws.backup.Vault(
            name,
            name=f"{args.name_prefix}-database",
            kms_key_arn=args.key_arn,
            opts=kept,
        )
        recovery_vault = aws.backup.Vault(
            f"{name}-recovery",
            name=f"{args.name_prefix}-database-recovery",
            kms_key_arn=recovery_key.arn,
            region=recovery.region,
            opts=kept,
        )
        plan = aws.backup.Plan(
            name,
            name=f"{args.name_prefix}-database",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name=f"every-{recovery.every_hours}h-to-{recovery.region}",
                    target_vault_name=local_vault.name,
                    schedule=f"cron(0 */{recovery.every_hours} * * ? *)"
                    if recovery.every_hours < 24
                    else "cron(0 3 * * ? *)",
                    start_window=60,
                    completion_window=360,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(
                        delete_after=recovery.retention_days
                    ),
                    copy_actions=[
                        aws.backup.PlanRuleCopyActionArgs(
                            destination_vault_arn=recovery_vault.arn,
                            lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(
                                delete_after=recovery.retention_days
                            ),
                        )
                    ],
                )
            ],
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-backup",
            assume_role_policy=service_trust_policy("backup.amazonaws.com"),
            description=f"AWS Backup of {args.name_prefix}'s database",
            permissions_boundary=args.permissions_boundary,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-{policy.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=managed_policy_arn(policy),
                opts=child,
            )
            for policy in BACKUP_POLICIES
        ]
        aws.backup.Selection(
            name,
            name=f"{args.name_prefix}-database",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            resources=[args.cluster_arn],
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )
        self.recovery_vault_arn = recovery_vault.arn
        self.register_outputs({"recoveryVaultArn": recovery_vault.arn})
