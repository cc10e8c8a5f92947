"""`python -m offline.preflight --stack <stack>`: can the workflows deploy this stack file?

Run before every `pulumi preview` and `pulumi up` in CI, without the Pulumi CLI or credentials.
It refuses, in one line naming every problem, a stack file that

- has no `secretsprovider` of its own (an `awskms://` key in the stack's region), or no
  `encryptedkey` (without it the CLI would make a new data key and could decrypt nothing the
  file holds: pulumi/pulumi pkg/secrets/cloud/manager.go, NewCloudSecretsManager);
- leaves a secret the stack needs unset: missing, in plain text, or still a placeholder, that
  is anything but the ciphertext `pulumi config set --secret` writes (`v1:<nonce>:<sealed>`,
  base64, a 12-byte AES-GCM nonce and at least the 16-byte tag: pulumi/pulumi
  sdk/go/common/resource/config/crypt.go, symmetricCrypter);
- does not say how it is delivered (`delivery`), or has settings the program would refuse.

When the file is ready it prints what the workflow needs from it (account, region, roles, the
state backend) as `name=value` lines, also appended to $GITHUB_OUTPUT when that is set.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from offline.engine import (
    PROJECT_DIR,
    StackFileLoader,
    project_name,
    project_values,
    read_stack_file,
)
from stacks.loader import SettingsError, any_settings_from_values, required_secret_keys
from stacks.settings import StackSettings

AWSKMS = re.compile(r"^awskms://(?P<key>[^?]+)\?region=(?P<region>[a-z]{2}-[a-z]+-[0-9])$")
GCM_NONCE_BYTES = 12
GCM_TAG_BYTES = 16


def is_ciphertext(value: Any) -> bool:
    """Whether a `secure:` value has the shape of Pulumi's ciphertext (the key is not needed to
    tell a placeholder from it)."""
    if not isinstance(value, str):
        return False
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != "v1":
        return False
    try:
        nonce = base64.b64decode(parts[1], validate=True)
        sealed = base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        return False
    return len(nonce) == GCM_NONCE_BYTES and len(sealed) >= GCM_TAG_BYTES


def check(stack: str, project_dir: Path = PROJECT_DIR) -> tuple[list[str], dict[str, str]]:
    """The problems of the stack file, and (when there are none) what the workflow needs."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return [f"no stack file {path.name}"], {}
    project = project_name(project_dir)
    try:
        config = read_stack_file(path, project)
    except SettingsError as error:
        return [str(error)], {}
    # Its top-level keys (read_stack_file has checked the YAML and returns only `config:`).
    document = yaml.load(path.read_text(), Loader=StackFileLoader) or {}
    problems: list[str] = []
    values = project_values(config, project)
    plain = {key: value for key, value in values.items() if not _is_secure(value)}
    try:
        settings = any_settings_from_values(stack, plain)
    except SettingsError as error:
        return [*str(error).splitlines()], {}
    if not isinstance(settings, StackSettings):
        return [f"environment {settings.environment!r} is deployed by hand, not by CI"], {}

    provider = document.get("secretsprovider")
    match = AWSKMS.fullmatch(provider) if isinstance(provider, str) else None
    if match is None:
        problems.append(
            f"secretsprovider {provider!r} is not a KMS key of the stack (allowed: "
            f"awskms://<alias of the bootstrap's key>?region={settings.region})"
        )
    elif match["region"] != settings.region:
        problems.append(
            f"secretsprovider's key is in {match['region']}, the stack in {settings.region}"
        )
    encrypted_key = document.get("encryptedkey")
    if not _is_base64(encrypted_key):
        problems.append(
            f"no encryptedkey (run once: pulumi stack init {stack} --secrets-provider "
            f"'{provider}', then commit {path.name})"
        )
    unset = [
        key
        for key in required_secret_keys(settings.environment, settings)
        if not (_is_secure(values.get(key)) and is_ciphertext(values[key]["secure"]))
    ]
    if unset:
        problems.append(
            f"unset secrets: {', '.join(unset)} (set each once: pulumi config set --secret "
            f"<key> <value> --stack {stack}, then commit {path.name})"
        )
    delivery = settings.delivery
    if delivery is None:
        problems.append("no delivery settings (account, preview role, state bucket, runner)")
    if problems or delivery is None:
        return problems, {}
    return [], {
        "account-id": delivery.account_id,
        "region": settings.region,
        "deploy-role": settings.access.deployer,
        "preview-role": delivery.preview_role,
        "cloud-url": f"s3://{delivery.state_bucket}",
    }


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _is_base64(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        return bool(base64.b64decode(value, validate=True))
    except binascii.Error:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    problems, outputs = check(args.stack, args.project_dir)
    if problems:
        print(f"{args.stack}: not deployable: {'; '.join(problems)}", file=sys.stderr)
        return 1
    lines = [f"{name}={value}" for name, value in outputs.items()]
    print("\n".join(lines))
    github_output = os.environ.get("GITHUB_OUTPUT")
    if github_output:
        with open(github_output, "a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
