"""Signed AWS requests with Python's standard library only, for the bootstrap Jobs.

The credentials come from the EKS Pod Identity agent (the container credentials provider:
AWS_CONTAINER_CREDENTIALS_FULL_URI, with the projected token of
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE as Authorization); each request is signed with Signature
Version 4 (AWS General Reference, "Signature Version 4 signing process"). The tests check the
signature against botocore's.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import NamedTuple


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
    service: str,
    credentials: Credentials,
    now: datetime.datetime,
    headers: Mapping[str, str],
    query: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """`headers` (lower-case names) with the host, date, token, payload hash and the
    Authorization of a SigV4-signed request; every header sent is signed, and `query` is the
    request's query string (sorted and encoded as SigV4's canonical query string)."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    payload = hashlib.sha256(body).hexdigest()
    signed = {
        **{name.lower(): value for name, value in headers.items()},
        "host": host,
        "x-amz-content-sha256": payload,
        "x-amz-date": stamp,
        "x-amz-security-token": credentials.token,
    }
    names = sorted(signed)
    canonical_query = "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted((query or {}).items())
    )
    canonical = "\n".join(
        [
            method,
            urllib.parse.quote(path, safe="/-_.~"),
            canonical_query,
            *(f"{name}:{signed[name].strip()}" for name in names),
            "",
            ";".join(names),
            payload,
        ]
    )
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(f"AWS4{credentials.secret_key}".encode(), day)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    signed["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return signed


def pod_identity_credentials() -> Credentials:
    """The role's credentials from the EKS Pod Identity agent."""
    with open(os.environ["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"]) as token_file:
        token = token_file.read().strip()
    request = urllib.request.Request(
        os.environ["AWS_CONTAINER_CREDENTIALS_FULL_URI"], headers={"Authorization": token}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        found = json.load(answer)
    return Credentials(found["AccessKeyId"], found["SecretAccessKey"], found["Token"])
