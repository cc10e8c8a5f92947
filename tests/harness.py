"""Runs one layer or component under the mock engine with fake inputs, apart from the program.

    run = run_isolated(lambda context, cluster: install_addons(...))

The callable gets a `StackContext` (a real `aws.Provider` under mocks, a fixed account) and a
`ClusterContext` (a Kubernetes provider, an OIDC issuer, nothing to wait for); the run records
what it registers, as `make synth` does for the whole program.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.context import ClusterContext, StackContext, stack_context
from components.shared.iam import OidcIssuer
from offline.engine import ACCOUNT_ID, StackRun, run_program

PROJECT = "financial-planning"
STACK = "harness"
REGION = "eu-west-1"
ISSUER = f"oidc.eks.{REGION}.amazonaws.com/id/HARNESS"


def fake_cluster() -> ClusterContext:
    return ClusterContext(
        name=pulumi.Output.from_input("harness-cluster"),
        oidc=OidcIssuer(
            provider_arn=f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{ISSUER}", host_path=ISSUER
        ),
        security_group_id=pulumi.Output.from_input("sg-harness"),
        provider=k8s.Provider("harness-k8s", kubeconfig="{}"),
        ready=[],
    )


def run_isolated(
    build: Callable[[StackContext, ClusterContext], Any], *, protect: bool = False
) -> StackRun:
    def program() -> dict[str, Any]:
        context = stack_context(PROJECT, STACK, REGION, {"pulumi-stack": STACK}, protect)
        return {"result": build(context, fake_cluster())}

    return run_program(program, project=PROJECT, stack=STACK)
