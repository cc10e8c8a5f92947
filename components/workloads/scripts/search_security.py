"""Applies the search domain's fine-grained access control: roles, their mappings, policies.

Runs in the search bootstrap Job as the domain's master user (its Pod Identity role), with
Python's standard library only: the credentials come from the Pod Identity agent, and each
request to the domain is signed with Signature Version 4 here. Every request is an idempotent
PUT; the Job fails on the first answer that is not a success.

Input: /plan/plan.json, a list of {"method", "path", "body"}; the environment gives
AWS_REGION, SEARCH_ENDPOINT, and (the Pod Identity webhook)
AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import sys
import urllib.parse
import urllib.request
from typing import Any, NamedTuple

SERVICE = "es"


class Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signed_headers(
    method: str,
    host: str,
    path: str,
    body: bytes,
    region: str,
    credentials: Credentials,
    now: datetime.datetime,
) -> dict[str, str]:
    """The headers of a SigV4-signed request (AWS General Reference, "Signature Version 4")."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    payload = hashlib.sha256(body).hexdigest()
    headers = {
        "content-type": "application/json",
        "host": host,
        "x-amz-content-sha256": payload,
        "x-amz-date": stamp,
        "x-amz-security-token": credentials.token,
    }
    names = sorted(headers)
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path, safe="/-_.~"),
            "",
            *(f"{name}:{headers[name].strip()}" for name in names),
            "",
            ";".join(names),
            payload,
        ]
    )
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), day)
    for part in (region, SERVICE, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return headers


def pod_identity_credentials() -> Credentials:
    """The role's credentials from the EKS Pod Identity agent (the container credentials
    provider: a GET with the projected token as Authorization)."""
    with open(os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]) as token_file:
        token = token_file.read().strip()
    request = urllib.request.Request(
        os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], headers={"Authorization": token}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        found = json.load(answer)
    return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["Token"])


def apply(plan: list[dict[str, Any]], endpoint: str, region: str) -> None:
    credentials = pod_identity_credentials()
    for step in plan:
        body = json.dumps(step["body"]).encode()
        headers = signed_headers(
            step["method"],
            endpoint,
            step["path"],
            body,
            region,
            credentials,
            datetime.datetime.now(datetime.UTC),
        )
        request = urllib.request.Request(
            f"https://{endpoint}{step['path']}", data=body, headers=headers, method=step["method"]
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            print(step["method"], step["path"], answer.status, flush=True)


def main() -> int:
    with open("/plan/plan.json") as plan_file:
        plan = json.load(plan_file)
    apply(plan, os.environ["SEARCH_ENDPOINT"], os.environ["AWS_REGION"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
