"""The preflight the workflows run before every preview and up: a stack file that cannot be
decrypted, or still holds placeholders, is refused in one line naming every problem.

A ready stack file is made here the way the CLI makes one: `encryptedkey` is a data key wrapped
by KMS (moto's KMS Encrypt), base64 (pulumi/pulumi pkg/secrets/cloud/manager.go), and each
secret is sealed with that data key by AES-256-GCM under a 12-byte nonce and written
`v1:<nonce>:<sealed>` (pulumi/pulumi sdk/go/common/resource/config/crypt.go).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from moto import mock_aws

from offline.engine import PROJECT_DIR
from offline.preflight import check, is_ciphertext, main
from stacks.environments import EKS_ENVIRONMENTS
from stacks.loader import required_secret_keys, settings_from_values

DATA_KEY = os.urandom(32)
ROLES = "arn:aws:iam::123456789012:role/financial-planning-github"


def seal(value: str, data_key: bytes = DATA_KEY) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(data_key).encrypt(nonce, value.encode(), None)
    return f"v1:{base64.b64encode(nonce).decode()}:{base64.b64encode(sealed).decode()}"


@pytest.fixture(scope="module")
def encrypted_key() -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            kms = boto3.client("kms", region_name="us-east-1")
            key = kms.create_key()["KeyMetadata"]["KeyId"]
            blob = kms.encrypt(KeyId=key, Plaintext=DATA_KEY)["CiphertextBlob"]
            yield base64.b64encode(blob).decode()


def project(tmp_path: Path, stack: str) -> Path:
    """A copy of the project's stack file (and Pulumi.yaml) to change."""
    for name in ("Pulumi.yaml", f"Pulumi.{stack}.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    return tmp_path / f"Pulumi.{stack}.yaml"


def initialised(path: Path, encrypted_key: str, *, leave: tuple[str, ...] = ()) -> None:
    """What `pulumi stack init` and `pulumi config set --secret` leave: the encrypted data key
    and each secret sealed; the keys in `leave` keep their placeholder."""
    lines = []
    key = ""
    for line in path.read_text().splitlines():
        if line.startswith("secretsprovider:"):
            lines += [line, f"encryptedkey: {encrypted_key}"]
            continue
        if line.strip().startswith("financial-planning:") and line.rstrip().endswith(":"):
            key = line.strip().removeprefix("financial-planning:").rstrip(":")
        if line.strip() == "secure: placeholder" and key not in leave:
            line = line.replace("placeholder", seal(f"value of {key}"))
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("stack", EKS_ENVIRONMENTS)
def test_the_committed_stack_files_cannot_be_deployed_by_accident(
    stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--stack", stack]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{stack}: not deployable: ")
    assert "no encryptedkey (run once: pulumi stack init" in err
    # Every secret the stack needs is named, each once.
    problems, _ = check(stack)
    [unset] = [p for p in problems if p.startswith("unset secrets: ")]
    named = unset.removeprefix("unset secrets: ").split(" (")[0].split(", ")
    settings = settings_from_values(stack, _plain_values(stack))
    assert named == required_secret_keys(settings.environment, settings)
    assert len(named) >= 5


def _plain_values(stack: str) -> dict[str, object]:
    from offline.engine import stack_config

    config, secret_keys = stack_config(stack)
    return {key.split(":", 1)[1]: value for key, value in config.items() if key not in secret_keys}


def test_an_initialised_stack_file_passes_and_says_what_the_workflow_needs(
    tmp_path: Path,
    encrypted_key: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = project(tmp_path, "production")
    initialised(path, encrypted_key)
    problems, outputs = check("production", tmp_path)
    assert problems == []
    assert outputs == {
        "account-id": "123456789012",
        "region": "us-east-1",
        "deploy-role": f"{ROLES}-production-deploy",
        "preview-role": f"{ROLES}-production-preview",
        "cloud-url": "s3://financial-planning-production-state",
    }
    github_output = tmp_path / "github-output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(github_output))
    assert main(["--stack", "production", "--project-dir", str(tmp_path)]) == 0
    assert github_output.read_text().splitlines() == [f"{k}={v}" for k, v in outputs.items()]
    assert capsys.readouterr().err == ""


def test_one_placeholder_left_is_named_alone(tmp_path: Path, encrypted_key: str) -> None:
    path = project(tmp_path, "staging")
    initialised(path, encrypted_key, leave=("alertSlackWebhookUrl",))
    problems, outputs = check("staging", tmp_path)
    assert outputs == {}
    assert len(problems) == 1
    assert problems[0].startswith("unset secrets: alertSlackWebhookUrl (set each once:")


def test_a_secret_in_plain_text_is_unset(tmp_path: Path, encrypted_key: str) -> None:
    path = project(tmp_path, "staging")
    initialised(path, encrypted_key)
    text = re.sub(
        r"financial-planning:openaiApiKey:\n    secure: v1:\S+",
        "financial-planning:openaiApiKey: sk-in-plain-text",
        path.read_text(),
    )
    assert "openaiApiKey: sk-in-plain-text" in text
    path.write_text(text)
    problems, _ = check("staging", tmp_path)
    assert problems == [
        "unset secrets: openaiApiKey (set each once: pulumi config set --secret <key> <value> "
        "--stack staging, then commit Pulumi.staging.yaml)"
    ]


@pytest.mark.parametrize(
    ("provider", "problem"),
    [
        ("passphrase", "secretsprovider 'passphrase' is not a KMS key of the stack"),
        (None, "secretsprovider None is not a KMS key of the stack"),
        (
            "awskms://alias/financial-planning-pulumi-staging?region=eu-west-1",
            "secretsprovider's key is in eu-west-1, the stack in us-east-1",
        ),
    ],
)
def test_a_secrets_provider_other_than_the_stacks_key_is_refused(
    tmp_path: Path, encrypted_key: str, provider: str | None, problem: str
) -> None:
    path = project(tmp_path, "staging")
    initialised(path, encrypted_key)
    lines = [
        line
        for line in path.read_text().splitlines()
        if not line.startswith("secretsprovider:") or provider is not None
    ]
    text = "\n".join(lines) + "\n"
    if provider is not None:
        text = text.replace(
            "secretsprovider: awskms://alias/financial-planning-pulumi-staging?region=us-east-1",
            f"secretsprovider: {provider}",
        )
    path.write_text(text)
    problems, _ = check("staging", tmp_path)
    assert [p for p in problems if p.startswith("secretsprovider")] == [
        next(p for p in problems if p.startswith(problem))
    ]


def test_a_wrong_setting_is_refused_before_the_secrets_are_looked_at(tmp_path: Path) -> None:
    path = project(tmp_path, "staging")
    path.write_text(path.read_text().replace("stateBucket: financial", "stateBucket: Financial"))
    problems, _ = check("staging", tmp_path)
    assert len(problems) == 1 and problems[0].startswith("delivery.stateBucket: ")


def test_a_stack_without_delivery_cannot_be_deployed_by_ci(
    tmp_path: Path, encrypted_key: str
) -> None:
    path = project(tmp_path, "staging")
    initialised(path, encrypted_key)
    text = path.read_text()
    start = text.index("  financial-planning:delivery:")
    end = text.index("  # The IAM principal that administers the search domain")
    path.write_text(text[:start] + text[end:])
    problems, _ = check("staging", tmp_path)
    assert problems == ["no delivery settings (account, preview role, state bucket, runner)"]


def test_the_development_stack_is_not_one_for_ci() -> None:
    assert check("development") == (
        ["environment 'development' is deployed by hand, not by CI"],
        {},
    )


def test_only_the_clis_ciphertext_counts_as_set() -> None:
    assert is_ciphertext(seal("a value"))
    assert not is_ciphertext("placeholder")
    assert not is_ciphertext(seal("a value").replace("v1:", "v2:"))
    nonce8 = base64.b64encode(os.urandom(8)).decode()
    assert not is_ciphertext(f"v1:{nonce8}:{base64.b64encode(os.urandom(32)).decode()}")
    short = base64.b64encode(os.urandom(12)).decode()
    assert not is_ciphertext(f"v1:{short}:{base64.b64encode(os.urandom(15)).decode()}")
    assert not is_ciphertext(f"v1:{short}:not base64!")
    assert not is_ciphertext({"nested": "value"})
