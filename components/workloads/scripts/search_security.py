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
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

# Beside this script in the Job's volume (and on the path the tests give).
from aws_sigv4 import (  # type: ignore[import-not-found,unused-ignore]
    Credentials,
    pod_identity_credentials,
)
from aws_sigv4 import signed_headers as sign  # type: ignore[import-not-found,unused-ignore]

SERVICE = "es"


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
    """The headers of a SigV4-signed JSON request to the search domain (aws_sigv4.py)."""
    headers: dict[str, str] = sign(
        method,
        host,
        path,
        body,
        region,
        SERVICE,
        credentials,
        now,
        {"content-type": "application/json"},
        query,
    )
    return headers


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
