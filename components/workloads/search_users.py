"""The search bootstrap: applies the search domain's fine-grained access control.

A Job in a namespace of its own runs as the domain's master user (its Pod Identity role, see
components/data/search_access.py) and PUTs the plan: the readers' and writers' roles, who holds
each, and the administrators. The script (scripts/search_security.py) needs only Python's
standard library: it reads its credentials from the EKS Pod Identity agent and signs each
request to the domain itself (Signature Version 4, checked against botocore's in the tests).
The Job is named after a digest of its plan, so it runs again exactly when the plan changes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.data.search_access import (
    SEARCH_BOOTSTRAP_ACCOUNT,
    SEARCH_BOOTSTRAP_NAMESPACE,
    IndexRetention,
    security_plan,
)
from components.shared.conventions import digest, namespace, standard_labels
from components.workloads.bootstrap_job import bootstrap_job

SCRIPT = Path(__file__).parent / "scripts" / "search_security.py"
# The request signer it shares with the database bootstrap, mounted beside it.
SIGNER = Path(__file__).parent / "scripts" / "aws_sigv4.py"
# The official Python image (ECR Public's mirror of the Docker official images), at an exact
# release: the script uses the standard library only.
PYTHON_IMAGE = "public.ecr.aws/docker/library/python:3.12.8-alpine3.21"


@dataclass(frozen=True)
class SearchUsersArgs:
    cluster_name: pulumi.Input[str]
    region: str
    endpoint: pulumi.Input[str]
    master_role_arn: pulumi.Input[str]
    administrator_arn: str
    # FGAC role -> the IAM roles that hold it.
    mappings: Mapping[str, Sequence[pulumi.Input[str]]]
    # ISM policy id -> the indices it deletes and when.
    retention: Mapping[str, IndexRetention] = field(default_factory=dict)
    # The container logs' replica shards (their index template), where logs are shipped.
    log_replicas: int | None = None


class SearchUsers(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: SearchUsersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:workloads:SearchUsers", name, None, opts)
        ns = namespace(
            SEARCH_BOOTSTRAP_NAMESPACE,
            pod_security="restricted",
            istio_injection=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        inside = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        labels = standard_labels("search-users", "search")
        roles = sorted(args.mappings)
        plan = pulumi.Output.all(
            args.master_role_arn, *(pulumi.Output.all(*args.mappings[r]) for r in roles)
        ).apply(
            lambda found: json.dumps(
                security_plan(
                    [args.administrator_arn, found[0]],
                    dict(zip(roles, found[1:], strict=True)),
                    args.retention,
                    args.log_replicas,
                ),
                indent=2,
                sort_keys=True,
            )
        )
        script = SCRIPT.read_text()
        signer = SIGNER.read_text()
        plan_digest = plan.apply(lambda text: digest(text + script + signer, 8))
        account = k8s.core.v1.ServiceAccount(
            f"{name}-account",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=SEARCH_BOOTSTRAP_ACCOUNT, namespace=SEARCH_BOOTSTRAP_NAMESPACE, labels=labels
            ),
            opts=inside,
        )
        # The Pod Identity agent gives this service account's pods the master role (its trust
        # names this cluster, namespace and service account).
        association = aws.eks.PodIdentityAssociation(
            f"{name}-identity",
            cluster_name=args.cluster_name,
            namespace=SEARCH_BOOTSTRAP_NAMESPACE,
            service_account=SEARCH_BOOTSTRAP_ACCOUNT,
            role_arn=args.master_role_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        config = k8s.core.v1.ConfigMap(
            f"{name}-plan",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=plan_digest.apply(lambda d: f"search-users-{d}"),
                namespace=SEARCH_BOOTSTRAP_NAMESPACE,
                labels=labels,
            ),
            data={"plan.json": plan, "search_security.py": script, "aws_sigv4.py": signer},
            opts=inside,
        )
        bootstrap_job(
            f"{name}-job",
            name=plan_digest.apply(lambda d: f"search-users-{d}"),
            namespace=SEARCH_BOOTSTRAP_NAMESPACE,
            labels=labels,
            # The Pod Identity webhook mounts its own token for this service account.
            service_account=SEARCH_BOOTSTRAP_ACCOUNT,
            container={
                "name": "apply",
                "image": PYTHON_IMAGE,
                "command": ["python3", "/plan/search_security.py"],
                "env": [
                    {"name": "AWS_REGION", "value": args.region},
                    {"name": "SEARCH_ENDPOINT", "value": args.endpoint},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "volumeMounts": [{"name": "plan", "mountPath": "/plan", "readOnly": True}],
            },
            volumes=[{"name": "plan", "configMap": {"name": config.metadata.name}}],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, account, config, association]),
        )
        self.register_outputs({"namespace": SEARCH_BOOTSTRAP_NAMESPACE, "roles": roles})
