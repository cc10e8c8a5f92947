"""Generated passwords (pulumi-random): secret in the state, never in code or stack files."""

from __future__ import annotations

import pulumi
import pulumi_random as random


def generated_password(
    name: str, opts: pulumi.ResourceOptions, length: int = 32
) -> pulumi.Output[str]:
    # Letters and digits only: the value goes unescaped into connection strings, ACL files,
    # login forms and tokens.
    return random.RandomPassword(name, length=length, special=False, opts=opts).result
