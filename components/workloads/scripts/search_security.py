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
import urllib.error
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
    query: dict[str, str] | None = None,
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
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted((query or {}).items())
    )
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path, safe="/-_.~"),
            canonical_query,
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


def send(
    method: str,
    path: str,
    body: bytes,
    endpoint: str,
    region: str,
    credentials: Credentials,
    query: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One signed request; (status, body), an HTTP error's included."""
    headers = signed_headers(
        method,
        endpoint,
        path,
        body,
        region,
        credentials,
        datetime.datetime.now(datetime.UTC),
        query,
    )
    url = f"https://{endpoint}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(sorted(query.items()))
    request = urllib.request.Request(
        url, data=body if method != "GET" else None, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def apply(plan: list[dict[str, Any]], endpoint: str, region: str, credentials: Credentials) -> None:
    """Each step in order. An `upsert` step (an ISM policy, which a plain PUT creates only once)
    reads the current version first and updates it under that version; an `absent_ok` step
    may find nothing to act on (404)."""
    for step in plan:
        body = json.dumps(step["body"]).encode()
        query: dict[str, str] = {}
        if step.get("upsert"):
            status, found = send("GET", step["path"], b"", endpoint, region, credentials)
            if status == 200:
                current = json.loads(found)
                query = {
                    "if_primary_term": str(current["_primary_term"]),
                    "if_seq_no": str(current["_seq_no"]),
                }
            elif status != 404:
                raise RuntimeError(f"GET {step['path']}: {status} {found[:500]!r}")
        status, answer = send(
            step["method"], step["path"], body, endpoint, region, credentials, query
        )
        print(step["method"], step["path"], status, flush=True)
        if status == 404 and step.get("absent_ok"):
            continue
        if not 200 <= status < 300:
            raise RuntimeError(f"{step['method']} {step['path']}: {status} {answer[:500]!r}")


def main() -> int:
    with open("/plan/plan.json") as plan_file:
        plan = json.load(plan_file)
    apply(plan, os.environ["SEARCH_ENDPOINT"], os.environ["AWS_REGION"], pod_identity_credentials())
    return 0


if __name__ == "__main__":
    sys.exit(main())
