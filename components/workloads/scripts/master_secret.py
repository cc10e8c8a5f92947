"""Reads the database's master secret as it is now, for the database bootstrap's psql.

Runs as the bootstrap Job's init container, with its own role (EKS Pod Identity): one
GetSecretValue on the secret Aurora manages and rotates (every 7 days in production), so the Job
never signs in with a password a rotation has replaced. Writes `username` and `password` into
the memory-backed volume the psql container reads, readable by the Job's user only.

Environment: AWS_REGION, MASTER_SECRET_ARN, CREDENTIALS_DIR, the Pod Identity webhook's
AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, and (tests only)
SECRETS_MANAGER_URL in place of https://secretsmanager.<region>.amazonaws.com.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import urllib.parse
import urllib.request

# Beside this script in the Job's volume (and on the path the tests give).
from aws_sigv4 import (  # type: ignore[import-not-found,unused-ignore]
    Credentials,
    pod_identity_credentials,
    signed_headers,
)

# Secrets Manager's JSON protocol (Secrets Manager API Reference, GetSecretValue).
TARGET = "secretsmanager.GetSecretValue"
CONTENT_TYPE = "application/x-amz-json-1.1"


def get_secret_value(url: str, region: str, secret_id: str, credentials: Credentials) -> str:
    """The secret's current SecretString (AWSCURRENT)."""
    body = json.dumps({"SecretId": secret_id}).encode()
    host = urllib.parse.urlsplit(url).netloc
    headers = signed_headers(
        "POST",
        host,
        "/",
        body,
        region,
        "secretsmanager",
        credentials,
        datetime.datetime.now(datetime.UTC),
        {"content-type": CONTENT_TYPE, "x-amz-target": TARGET},
    )
    request = urllib.request.Request(f"{url}/", data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        found = json.load(answer)
    return str(found["SecretString"])


def write_credentials(secret_string: str, directory: str) -> None:
    """`username` and `password` from the secret, each a file only its owner may read."""
    secret = json.loads(secret_string)
    for key in ("username", "password"):
        path = os.path.join(directory, key)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secret[key])


def main() -> int:
    region = os.environ["AWS_REGION"]
    url = os.environ.get("SECRETS_MANAGER_URL", f"https://secretsmanager.{region}.amazonaws.com")
    secret = get_secret_value(
        url, region, os.environ["MASTER_SECRET_ARN"], pod_identity_credentials()
    )
    write_credentials(secret, os.environ["CREDENTIALS_DIR"])
    print("read the master secret's current version", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
