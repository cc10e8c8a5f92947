"""Search on Amazon OpenSearch Service: a VPC domain, encrypted, HTTPS only, fine-grained access,
publishing its own logs (audit, error, slow logs) to encrypted CloudWatch log groups."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.data.stores import store_key_and_group
from components.foundation.network import PrivateNetwork
from components.shared.iam import PARTITION, policy_document
from components.shared.kms import encryption_key, log_key_policy
from stacks.data_settings import SearchSettings

HTTPS_PORT = 443
# The domain's own logs, by the log type OpenSearch Service publishes (its API's
# LogPublishingOptions keys): FGAC's audit log, the error (application) log, the slow logs.
DOMAIN_LOGS = {
    "AUDIT_LOGS": "audit",
    "ES_APPLICATION_LOGS": "application",
    "INDEX_SLOW_LOGS": "index-slow",
    "SEARCH_SLOW_LOGS": "search-slow",
}
# OpenSearch Service's service principal, which writes the published logs.
OPENSEARCH_SERVICE = "es.amazonaws.com"
# TLS 1.2 minimum with perfect forward secrecy only.
OPENSEARCH_TLS_POLICY = "Policy-Min-TLS-1-2-PFS-2023-10"


def search_domain_arn(region: str, account_id: pulumi.Input[str], name: str) -> pulumi.Output[str]:
    return pulumi.Output.from_input(account_id).apply(
        lambda account: f"arn:{PARTITION}:es:{region}:{account}:domain/{name}"
    )


def search_access_policy(account_id: str, domain_arn: str) -> str:
    """Principals of this account only, and only those whose IAM policies allow it; fine-grained
    access control then decides per index. No other account and no anonymous caller."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{PARTITION}:iam::{account_id}:root"},
                "Action": "es:ESHttp*",
                "Resource": f"{domain_arn}/*",
            }
        ]
    )


def domain_log_group_prefix(domain_name: str) -> str:
    """Where the domain's log groups live (the OpenSearch Service console's own default)."""
    return f"/aws/opensearch/domains/{domain_name}"


def log_publishing_policy(account_id: str, domain_arn: str, log_group_arns: list[str]) -> str:
    """The CloudWatch Logs resource policy OpenSearch Service needs to write the domain's log
    groups: create streams and put events in those groups (their streams: `:*`), for this
    domain of this account only (the confused-deputy conditions the OpenSearch Service developer
    guide recommends)."""
    return policy_document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": OPENSEARCH_SERVICE},
                "Action": ["logs:PutLogEvents", "logs:CreateLogStream"],
                "Resource": [f"{arn}:*" for arn in sorted(log_group_arns)],
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": domain_arn},
                },
            }
        ]
    )


@dataclass(frozen=True)
class SearchArgs:
    domain_name: str
    settings: SearchSettings
    network: PrivateNetwork
    region: str
    account_id: pulumi.Input[str]
    # Fine-grained access control's master user (the search bootstrap's role).
    master_user_arn: pulumi.Input[str]
    protect: bool


class SearchDomain(pulumi.ComponentResource):
    """An OpenSearch domain inside the VPC: encrypted, HTTPS only, fine-grained access control."""

    endpoint: pulumi.Output[str]
    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: SearchArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:data:SearchDomain", name, None, opts)
        settings = args.settings
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        key, security_group = store_key_and_group(
            self,
            f"{name}-search",
            "OpenSearch",
            args.domain_name,
            args.network,
            HTTPS_PORT,
            args.protect,
        )
        zones = settings.zone_count
        account_id = pulumi.Output.from_input(args.account_id)
        domain_arn = search_domain_arn(args.region, account_id, args.domain_name)
        log_groups, log_policy = self._log_groups(name, args, account_id, domain_arn)
        domain = aws.opensearch.Domain(
            name,
            domain_name=args.domain_name,
            engine_version=settings.engine_version,
            cluster_config=aws.opensearch.DomainClusterConfigArgs(
                instance_type=settings.instance_type,
                instance_count=settings.instance_count,
                zone_awareness_enabled=zones > 1,
                zone_awareness_config=(
                    aws.opensearch.DomainClusterConfigZoneAwarenessConfigArgs(
                        availability_zone_count=zones
                    )
                    if zones > 1
                    else None
                ),
                dedicated_master_enabled=settings.dedicated_master_type is not None,
                dedicated_master_type=settings.dedicated_master_type,
                dedicated_master_count=3 if settings.dedicated_master_type else None,
            ),
            ebs_options=aws.opensearch.DomainEbsOptionsArgs(
                ebs_enabled=True, volume_type="gp3", volume_size=settings.volume_size_gib
            ),
            # One subnet per zone the data nodes use.
            vpc_options=aws.opensearch.DomainVpcOptionsArgs(
                subnet_ids=list(args.network.subnet_ids)[:zones],
                security_group_ids=[security_group.id],
            ),
            encrypt_at_rest=aws.opensearch.DomainEncryptAtRestArgs(
                enabled=True, kms_key_id=key.arn
            ),
            node_to_node_encryption=aws.opensearch.DomainNodeToNodeEncryptionArgs(enabled=True),
            domain_endpoint_options=aws.opensearch.DomainDomainEndpointOptionsArgs(
                enforce_https=True, tls_security_policy=OPENSEARCH_TLS_POLICY
            ),
            advanced_security_options=aws.opensearch.DomainAdvancedSecurityOptionsArgs(
                enabled=True,
                anonymous_auth_enabled=False,
                # IAM principals only: no internal users, so no password to keep anywhere.
                internal_user_database_enabled=False,
                master_user_options=(
                    aws.opensearch.DomainAdvancedSecurityOptionsMasterUserOptionsArgs(
                        master_user_arn=args.master_user_arn
                    )
                ),
            ),
            access_policies=pulumi.Output.all(account_id, domain_arn).apply(
                lambda values: search_access_policy(values[0], values[1])
            ),
            # AUDIT_LOGS needs fine-grained access control (on above); the audit log itself is
            # switched on in FGAC's audit configuration by the search bootstrap.
            log_publishing_options=[
                aws.opensearch.DomainLogPublishingOptionArgs(
                    log_type=log_type, cloudwatch_log_group_arn=group.arn, enabled=True
                )
                for log_type, group in log_groups.items()
            ],
            # OpenSearch Service checks that it may write the log groups when the domain is
            # created or changed.
            opts=pulumi.ResourceOptions.merge(
                kept, pulumi.ResourceOptions(depends_on=[log_policy])
            ),
        )
        self.endpoint = domain.endpoint
        self.arn = domain.arn
        self.register_outputs({"endpoint": domain.endpoint})

    def _log_groups(
        self,
        name: str,
        args: SearchArgs,
        account_id: pulumi.Output[str],
        domain_arn: pulumi.Output[str],
    ) -> tuple[dict[str, aws.cloudwatch.LogGroup], aws.cloudwatch.LogResourcePolicy]:
        """One log group per published log, under one key CloudWatch Logs may use for these
        groups only, kept the stack's days; and the resource policy that lets the domain write
        them."""
        prefix = domain_log_group_prefix(args.domain_name)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect)
        key = encryption_key(
            f"{name}-logs",
            alias=f"{args.domain_name}-logs",
            description=f"Encryption of OpenSearch {args.domain_name}'s published logs",
            protect=args.protect,
            parent=self,
            policy=account_id.apply(
                lambda account: log_key_policy(
                    account,
                    args.region,
                    f"arn:{PARTITION}:logs:{args.region}:{account}:log-group:{prefix}/*",
                )
            ),
        )
        groups = {
            log_type: aws.cloudwatch.LogGroup(
                f"{name}-{suffix}-logs",
                name=f"{prefix}/{suffix}",
                retention_in_days=args.settings.log_retention_days,
                kms_key_id=key.arn,
                opts=kept,
            )
            for log_type, suffix in DOMAIN_LOGS.items()
        }
        policy = aws.cloudwatch.LogResourcePolicy(
            f"{name}-logs",
            policy_name=f"{args.domain_name}-opensearch-logs",
            policy_document=pulumi.Output.all(
                account_id, domain_arn, *(group.arn for group in groups.values())
            ).apply(lambda values: log_publishing_policy(values[0], values[1], list(values[2:]))),
            opts=kept,
        )
        return groups, policy
