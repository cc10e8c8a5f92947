"""The edge's web application firewall: an AWS WAF web ACL on the ALB, and its request log.

Rules, in the order WAF evaluates them (lowest priority first; priorities must differ):
0..n  operator UIs behind an allow-list: a request for such a host from outside it is blocked;
10    the per-IP rate limit (the seed's "rate limiting by IP", at the edge);
20-23 AWS managed rule groups: IP reputation, common (OWASP-style), known bad inputs, SQL
      injection.
Capacity: 25 + 700 + 200 + 200 managed, 2 for the rate rule, and 13 per allow-listed UI (a
prefix match on Host, 2, its lowercase transformation, 10, and an IP set match, 1), below the
1,500 WCU a web ACL has at its base price (AWS WAF Developer Guide, "Web ACL capacity units").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.shared.kms import encryption_key, log_group_key_policy
from stacks.edge_settings import WafSettings

# An ALB's web ACL is regional, in the ALB's region (the provider's).
SCOPE = "REGIONAL"
# (priority, rule group, what it stops). Rule groups are AWS's, versionless: AWS updates them.
MANAGED_RULE_GROUPS: tuple[tuple[int, str], ...] = (
    (20, "AWSManagedRulesAmazonIpReputationList"),
    (21, "AWSManagedRulesCommonRuleSet"),
    (22, "AWSManagedRulesKnownBadInputsRuleSet"),
    (23, "AWSManagedRulesSQLiRuleSet"),
)
RATE_RULE_PRIORITY = 10
# WAF's capacity units (Developer Guide: the managed rule groups' pages, "Rate-based rule
# statement", "String match", "IP set match"); a web ACL has 1,500 at its base price.
MANAGED_WCU = {
    "AWSManagedRulesAmazonIpReputationList": 25,
    "AWSManagedRulesCommonRuleSet": 700,
    "AWSManagedRulesKnownBadInputsRuleSet": 200,
    "AWSManagedRulesSQLiRuleSet": 200,
}
RATE_RULE_WCU = 2
ALLOW_LIST_RULE_WCU = 13
BASE_WCU_LIMIT = 1500
# The common rule set blocks request bodies over 8 KB; the API takes documents in larger
# bodies, so that one rule only counts (every other inspection of the body still applies).
COUNT_ONLY_RULES = {"AWSManagedRulesCommonRuleSet": ["SizeRestrictions_BODY"]}
# Headers that carry credentials never reach the log.
REDACTED_HEADERS = ("authorization", "cookie")


def capacity(allow_listed_hosts: int) -> int:
    """The web ACL's capacity units with this many allow-listed hosts."""
    return sum(MANAGED_WCU.values()) + RATE_RULE_WCU + ALLOW_LIST_RULE_WCU * allow_listed_hosts


def metric_name(name: str) -> str:
    """A CloudWatch metric name WAF accepts: letters, digits, - and _ (API VisibilityConfig)."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in name)[:128]


def visibility(name: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgsDict:
    return {
        "cloudwatch_metrics_enabled": True,
        "metric_name": metric_name(name),
        "sampled_requests_enabled": True,
    }


def host_is(host: str) -> aws.wafv2.WebAclRuleStatementArgsDict:
    """The request's Host header names `host`: lowercased first (header values keep case), and
    matched as a prefix, so that `host:443` or `host.` cannot slip past an exact match while
    the gateway, which ignores the port, still routes them to the UI."""
    return {
        "byte_match_statement": {
            "positional_constraint": "STARTS_WITH",
            "search_string": host,
            "field_to_match": {"single_header": {"name": "host"}},
            "text_transformations": [{"priority": 0, "type": "LOWERCASE"}],
        }
    }


def allow_list_rule(
    priority: int, ui: str, host: str, allowed: pulumi.Output[str], acl: str
) -> aws.wafv2.WebAclRuleArgsDict:
    """Block a request for `host` unless it comes from the allow-list's IP set."""
    return {
        "name": f"operator-{ui}-allow-list",
        "priority": priority,
        "action": {"block": {}},
        "statement": {
            "and_statement": {
                "statements": [
                    host_is(host),
                    {
                        "not_statement": {
                            "statement": {"ip_set_reference_statement": {"arn": allowed}}
                        }
                    },
                ]
            }
        },
        "visibility_config": visibility(f"{acl}-operator-{ui}"),
    }


def rate_rule(settings: WafSettings, acl: str) -> aws.wafv2.WebAclRuleArgsDict:
    return {
        "name": "rate-per-client-ip",
        "priority": RATE_RULE_PRIORITY,
        # A rule of WAF's own takes `action`; one that runs a rule group takes
        # `override_action` instead (never both: API reference, Rule).
        "action": {"block": {}},
        "statement": {
            "rate_based_statement": {
                # The ALB's peer is the client: no forwarded header to trust.
                "aggregate_key_type": "IP",
                "limit": settings.requests_per_ip,
                "evaluation_window_sec": settings.window_seconds,
            }
        },
        "visibility_config": visibility(f"{acl}-rate-per-ip"),
    }


def managed_rule(priority: int, group: str, acl: str) -> aws.wafv2.WebAclRuleArgsDict:
    statement: aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgsDict = {
        "name": group,
        "vendor_name": "AWS",
    }
    if group in COUNT_ONLY_RULES:
        statement["rule_action_overrides"] = [
            {"name": rule, "action_to_use": {"count": {}}} for rule in COUNT_ONLY_RULES[group]
        ]
    return {
        "name": group,
        "priority": priority,
        "override_action": {"none": {}},
        "statement": {"managed_rule_group_statement": statement},
        "visibility_config": visibility(f"{acl}-{group}"),
    }


@dataclass(frozen=True)
class EdgeFirewallArgs:
    name: str
    settings: WafSettings
    # Operator UI -> host, for UIs behind an allow-list (empty when operators sign in).
    allow_listed_hosts: Mapping[str, str]
    allowed_cidrs: Sequence[str]
    account_id: pulumi.Input[str]
    region: str
    protect: bool


class EdgeFirewall(pulumi.ComponentResource):
    web_acl_arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: EdgeFirewallArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:edge:EdgeFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if capacity(len(args.allow_listed_hosts)) > BASE_WCU_LIMIT:
            raise ValueError(
                f"web ACL {args.name} needs {capacity(len(args.allow_listed_hosts))} WCU, "
                f"over the {BASE_WCU_LIMIT} of its base price"
            )
        rules: list[aws.wafv2.WebAclRuleArgsDict] = []
        if args.allow_listed_hosts:
            allowed = aws.wafv2.IpSet(
                f"{name}-operators",
                name=f"{args.name}-operators",
                description="Source ranges that may open the operator UIs",
                scope=SCOPE,
                ip_address_version="IPV4",
                addresses=list(args.allowed_cidrs),
                opts=child,
            )
            rules += [
                allow_list_rule(priority, ui, host, allowed.arn, args.name)
                for priority, (ui, host) in enumerate(sorted(args.allow_listed_hosts.items()))
            ]
        rules.append(rate_rule(args.settings, args.name))
        rules += [
            managed_rule(priority, group, args.name) for priority, group in MANAGED_RULE_GROUPS
        ]
        web_acl = aws.wafv2.WebAcl(
            f"{name}-web-acl",
            name=args.name,
            description="The edge's ALB: managed rule groups and a per-IP rate limit",
            scope=SCOPE,
            default_action={"allow": {}},
            rules=rules,
            visibility_config=visibility(args.name),
            opts=child,
        )
        # WAF writes only to log groups named aws-waf-logs-* (API reference,
        # LoggingConfiguration.LogDestinationConfigs); LogGroup.arn comes without the ":*"
        # suffix WAF refuses.
        log_group_name = f"aws-waf-logs-{args.name}"
        key = encryption_key(
            f"{name}-waf-logs",
            alias=log_group_name,
            description=f"Encryption of {args.name}'s web ACL request log",
            protect=args.protect,
            parent=self,
            policy=log_group_key_policy(args.account_id, args.region, log_group_name),
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-waf-logs",
            name=log_group_name,
            retention_in_days=args.settings.log_retention_days,
            kms_key_id=key.arn,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.wafv2.WebAclLoggingConfiguration(
            f"{name}-waf-logs",
            resource_arn=web_acl.arn,
            log_destination_configs=[log_group.arn],
            redacted_fields=[{"single_header": {"name": header}} for header in REDACTED_HEADERS],
            opts=child,
        )
        self.web_acl_arn = web_acl.arn
        self.register_outputs({"webAclArn": web_acl.arn})
