"""Settings of the edge: the public hosts, their DNS zone and certificates, the firewall in
front of the load balancer, and who may open the operator UIs.

The hosts are `<apiHost>.<domain>` (REST on financial-planning-api, GraphQL on graphql-gateway
under /graphql) and one `<ui>.<domain>` per operator UI. Every name lives in the stack's Route 53
hosted zone: external-dns writes their records there and cert-manager proves them there.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from stacks.aws_facts import LOG_RETENTION_DAYS
from stacks.catalog import ServiceName
from stacks.rules import TokenIssuer, acme_contact, internet_ranges, service_port, url_port
from stacks.settings_base import Settings, invalid

# One DNS label (RFC 1123, lowercase: Route 53 and certificates compare names case-blind).
DNS_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
# Two labels or more, 253 characters at most, no trailing dot.
DNS_NAME_PATTERN = rf"^({DNS_LABEL}\.)+{DNS_LABEL}$"
DnsName = Annotated[str, Field(max_length=253, pattern=DNS_NAME_PATTERN)]
DnsLabel = Annotated[str, Field(pattern=rf"^{DNS_LABEL}$")]
HttpsUrl = Annotated[
    str,
    Field(pattern=r"^https://[a-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"),
    AfterValidator(url_port),
]
# The operator UIs the edge can serve: the monitoring add-on's Grafana and Prometheus.
OperatorUi = Literal["grafana", "prometheus", "jaeger"]
# The add-on (its key under `addons`) that serves each operator UI.
OPERATOR_UI_ADDONS: dict[str, str] = {
    "grafana": "monitoring",
    "prometheus": "monitoring",
    "jaeger": "jaeger",
}
# AWS WAF rate-based rules: a limit of 10 to 2,000,000,000 requests per evaluation window of
# 60, 120, 300 or 600 seconds (AWS WAF Developer Guide, "Rate-based rule statement").
WAF_MIN_RATE_LIMIT = 10
WAF_MAX_RATE_LIMIT = 2_000_000_000
WafWindow = Literal[60, 120, 300, 600]
# HSTS: browsers' preload lists ask for a year at least (hstspreload.org).
ONE_YEAR = 31_536_000


class HostedZone(Settings):
    # A Route 53 hosted zone ID (Z and up to 31 upper-case letters and digits).
    id: Annotated[str, Field(pattern=r"^Z[A-Z0-9]{1,31}$")]
    # Its name, without the trailing dot.
    name: DnsName


class OidcLogin(Settings):
    """Sign-in at the load balancer (ALB OIDC authentication) with the organisation's identity
    provider. The client secret is the stack secret `operatorOidcClientSecret`."""

    issuer: HttpsUrl
    authorization_endpoint: HttpsUrl
    token_endpoint: HttpsUrl
    user_info_endpoint: HttpsUrl
    client_id: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[!-~]+$")]


class OperatorAccess(Settings):
    """How an operator UI refuses strangers: exactly one of a sign-in (`oidc`) or an allow-list
    of source ranges (`allowedCidrs`, enforced by the web ACL)."""

    oidc: OidcLogin | None = None
    allowed_cidrs: list[str] | None = None

    @field_validator("allowed_cidrs")
    @classmethod
    def _ranges(cls, cidrs: list[str] | None) -> list[str] | None:
        if cidrs is None:
            return None
        if not cidrs:
            raise invalid("allowedCidrs", cidrs, "an empty allow-list admits nobody; list ranges")
        # A WAF IP set takes /1 to /32 (AWS WAF API reference, IPSet.Addresses); /8 or wider
        # would not be an allow-list, and a private range never reaches the internet-facing ALB.
        return internet_ranges(cidrs)

    @model_validator(mode="after")
    def _exactly_one(self) -> OperatorAccess:
        if (self.oidc is None) == (self.allowed_cidrs is None):
            given = "both" if self.oidc is not None else "neither"
            raise invalid(
                "oidc",
                given,
                f"{given} of oidc and allowedCidrs given (allowed: exactly one of them)",
            )
        return self


class WafSettings(Settings):
    # Requests one client IP may make per window before the web ACL blocks it (until its rate
    # falls below again).
    requests_per_ip: Annotated[int, Field(ge=WAF_MIN_RATE_LIMIT, le=WAF_MAX_RATE_LIMIT)]
    window_seconds: WafWindow = 300
    # Days the web ACL's request log (headers that carry credentials redacted) is kept.
    log_retention_days: int = 90

    @field_validator("log_retention_days")
    @classmethod
    def _cloudwatch_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            allowed = ", ".join(map(str, sorted(LOG_RETENTION_DAYS)))
            raise invalid(
                "logRetentionDays",
                days,
                f"{days} is not a CloudWatch Logs retention (allowed: {allowed})",
            )
        return days


class UserTokens(Settings):
    """The users' tokens (JWTs): checked at the gateway, and the identity the per-user rate
    limit counts by. A request without a token passes (sign-up and sign-in have none) and is
    limited by its IP only; one with a bad token is refused.

    The keys' contract, which the service named here must keep: it answers `GET <jwksPath>`
    on `jwksPort` with the issuer's JSON Web Key Set (RFC 7517), the public keys its tokens
    are signed with, as plain HTTP inside its pod (its sidecar adds the mesh's mTLS). The
    gateway's proxy fetches the set there, inside the mesh (components/edge/rate_limit.py),
    and may reach nothing else of that service. If the path answers anything else, every
    request with a token gets a 401: the TokenKeysUnavailable alert says so."""

    # The tokens' `iss` claim: any string (a URI where it holds ':'), not only an https URL.
    issuer: TokenIssuer
    # The service that serves the keys (the one that issues the tokens).
    jwks_service: ServiceName = "user-service"
    # Its port for the keys (unset: the service's port, the only one it serves).
    jwks_port: Annotated[int, Field(ge=1024, le=65535), AfterValidator(service_port)] | None = None
    jwks_path: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._~/-]{0,200}$")] = (
        "/.well-known/jwks.json"
    )

    def keys_port(self, service_port: int) -> int:
        """Where the keys are, given the service's port."""
        return self.jwks_port if self.jwks_port is not None else service_port


class RateLimits(Settings):
    """Envoy's global rate limit at the gateway (the seed's "rate limiting by user and IP"),
    behind the web ACL's coarser per-IP limit; counters kept in the stack's Redis."""

    requests_per_minute_per_ip: Annotated[int, Field(ge=1, le=1_000_000)]
    requests_per_minute_per_user: Annotated[int, Field(ge=1, le=1_000_000)]


class EdgeSettings(Settings):
    """The internet-facing entrance: an ALB (AWS Load Balancer Controller) with a WAF web ACL
    and an ACM certificate, in front of the Istio ingress gateway."""

    # Off: no load balancer, no public host (a stack reached only from inside).
    enabled: bool = True
    # The product's domain: every host is `<label>.<domain>`.
    domain: DnsName
    hosted_zone: HostedZone
    api_host: DnsLabel = "api"
    operator_uis: list[OperatorUi] = ["grafana", "prometheus"]
    # Required when operatorUis is not empty: no operator UI without authentication.
    operator_access: OperatorAccess | None = None
    # Where ACME (Let's Encrypt) sends expiry warnings for the gateway's certificate.
    acme_email: Annotated[str, AfterValidator(acme_contact)]
    # Let's Encrypt's production directory, or its staging one (untrusted certificates, high
    # limits) while a stack is being set up.
    acme_server: Literal["production", "staging"] = "production"
    waf: WafSettings
    # AWS Shield Advanced on the load balancer: needs the account's Shield Advanced
    # subscription (a one-year commitment), which this program does not take out.
    shield_advanced: bool = False
    hsts_max_age_seconds: Annotated[int, Field(ge=ONE_YEAR, le=2 * ONE_YEAR)] = ONE_YEAR
    user_tokens: UserTokens
    rate_limits: RateLimits

    @field_validator("operator_uis")
    @classmethod
    def _once_each(cls, uis: list[str]) -> list[str]:
        if len(set(uis)) != len(uis):
            raise invalid("operatorUis", uis, f"{uis} lists a UI twice")
        return uis

    @model_validator(mode="after")
    def _consistent(self) -> EdgeSettings:
        zone = self.hosted_zone.name
        if self.domain != zone and not self.domain.endswith(f".{zone}"):
            raise invalid(
                "domain",
                self.domain,
                f"{self.domain!r} is outside hosted zone {zone!r} (allowed: {zone} or a "
                f"name ending in .{zone})",
            )
        if self.operator_uis and self.operator_access is None:
            raise invalid(
                "operatorAccess",
                None,
                f"operator UIs {self.operator_uis} would be open to anyone (allowed: "
                "operatorAccess with oidc or allowedCidrs, or operatorUis: [])",
            )
        if self.api_host in self.operator_uis:
            raise invalid("apiHost", self.api_host, "is also an operator UI's host")
        limits, window_minutes = self.rate_limits, self.waf.window_seconds / 60
        # The web ACL's limit is the coarse backstop: the gateway's, per minute, must bite first.
        if limits.requests_per_minute_per_ip * window_minutes > self.waf.requests_per_ip:
            raise invalid(
                "rateLimits.requestsPerMinutePerIp",
                limits.requests_per_minute_per_ip,
                f"over {window_minutes:g} minutes it allows more than the web ACL's "
                f"{self.waf.requests_per_ip}, which would then block first (allowed: at most "
                f"{int(self.waf.requests_per_ip / window_minutes)})",
            )
        return self

    @property
    def operator_login(self) -> OidcLogin | None:
        """The operators' sign-in at the load balancer, where the stack has one."""
        access = self.operator_access
        return access.oidc if self.enabled and access is not None else None

    def host(self, label: str) -> str:
        return f"{label}.{self.domain}"

    @property
    def api_hostname(self) -> str:
        return self.host(self.api_host)

    def operator_hosts(self) -> dict[str, str]:
        """Operator UI -> its host."""
        return {ui: self.host(ui) for ui in self.operator_uis}
