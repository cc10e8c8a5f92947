"""Rules a stack setting must meet because AWS, Kubernetes, Istio or Let's Encrypt refuses what
breaks them, or accepts what they allow: one place for each, with its source beside it.

Each rule is a function that returns the value it accepts (perhaps normalised) or raises
`refuse(...)`, and, where a setting is only a value, an annotated type that applies it; the
error formatter in `stacks.loader` puts the key path in front of the message.
"""

from __future__ import annotations

import ipaddress
import re
from fractions import Fraction
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

from stacks.settings_base import invalid, refuse, short

# --- IAM principals ------------------------------------------------------------------------
# An IAM role or user of the commercial partition (the stacks run in commercial regions only,
# stacks/aws_facts.py): arn:aws:iam::<account>:role|user<path><name>. IAM's limits (botocore
# 1.44.8 data/iam/2010-05-08/service-2.json; IAM API reference, CreateRole Path and
# RoleName): roleNameType and userNameType are 1-64 of `[\w+=,.@-]`; pathType is 1-512
# characters, "/" alone or "/", then one or more of "!" to "~" (0x21-0x7E), then "/". A name or
# path outside them is a principal IAM could never have created, so an access entry or
# mapping for it fails.
IAM_NAME_MAX = 64
IAM_PATH_MAX = 512
IAM_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]+")
IAM_PATH = re.compile(r"/|/[\x21-\x7e]+/")
IAM_PRINCIPAL = re.compile(r"arn:aws:iam::(?P<account>[0-9]{12}):(?P<kind>role|user)(?P<rest>/.*)")
_IAM_EXAMPLE = "arn:aws:iam::<12-digit account>:role/<name> (or user/, with an optional /path/)"


def principal_arn(arn: str) -> str:
    """An IAM role or user ARN of the commercial partition whose name and path IAM allows."""
    match = IAM_PRINCIPAL.fullmatch(arn)
    if match is None:
        if re.match(r"arn:aws[a-z-]*:sts::[0-9]{12}:assumed-role/", arn):
            raise refuse(
                arn,
                f"{short(arn)} is a session of a role (what `aws sts get-caller-identity` "
                f"prints), not the role: give {_IAM_EXAMPLE}",
            )
        if re.match(r"arn:aws-[a-z-]+:", arn):
            raise refuse(
                arn,
                f"{short(arn)} is outside the commercial partition, the only one the stacks "
                f"run in: give {_IAM_EXAMPLE}",
            )
        raise refuse(arn, f"{short(arn)} is not an IAM role or user ARN: give {_IAM_EXAMPLE}")
    kind, rest = match.group("kind"), match.group("rest")
    name = rest.rsplit("/", 1)[1]
    path = rest[: len(rest) - len(name)]
    if not name:
        raise refuse(arn, f"{short(arn)} names no {kind} (it ends in '/')")
    if len(name) > IAM_NAME_MAX:
        raise refuse(
            arn,
            f"{short(arn)} names a {kind} of {len(name)} characters: IAM allows at most "
            f"{IAM_NAME_MAX}",
        )
    if not IAM_NAME.fullmatch(name):
        raise refuse(
            arn,
            f"{short(arn)}: IAM {kind} names use letters, digits and + = , . @ _ - only",
        )
    if len(path) > IAM_PATH_MAX or not IAM_PATH.fullmatch(path):
        raise refuse(
            arn,
            f"{short(arn)} has a path IAM does not allow (allowed: '/' alone, or '/' then "
            f"printable ASCII without spaces then '/', at most {IAM_PATH_MAX} characters)",
        )
    return arn


PrincipalArn = Annotated[str, AfterValidator(principal_arn)]

# --- RDS master user names -----------------------------------------------------------------
# CreateDBCluster MasterUsername (botocore rds model): "Can't be a reserved word for the chosen
# database engine"; RDS User Guide, "Naming constraints in Amazon RDS". For aurora-postgresql:
# - RDS's own roles: rdsadmin (RDS's management user, refused on every engine) and the
#   rds_* roles it creates in every PostgreSQL cluster (rds_superuser, rds_replication,
#   rds_password, rds_iam, ...; Aurora User Guide, "Understanding PostgreSQL roles and
#   permissions"), and rdsrepladmin, its replication user;
# - admin: refused by aurora-postgresql ("MasterUsername admin cannot be used as it is a
#   reserved word used by the engine", aws/aws-cdk#5076, #10597; cfn-lint#4425 tried each
#   name against CloudFormation: admin and rdsadmin fail, postgres succeeds);
# - PostgreSQL's reserved role prefix pg_ ("role names starting with pg_ are reserved",
#   CREATE ROLE; RDS relays it: DataShades/ckan-aws-templates#6);
# - PostgreSQL's RESERVED_KEYWORD words (postgres src/include/parser/kwlist.h; system_user
#   since PostgreSQL 16), which CREATE ROLE does not take as a bare name.
POSTGRES_RESERVED_KEYWORDS = frozenset(
    {
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "system_user",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    }
)
RDS_RESERVED_USERNAMES = frozenset({"rdsadmin", "rdsrepladmin", "admin"})
RESERVED_USERNAME_PREFIXES = ("pg_", "rds_")
# The two names gram.y's RoleSpec treats specially although they are no keywords ("public"
# and "none" ... must be treated specially here): CREATE ROLE none fails with 'role name
# "none" is reserved', and RoleId turns public into the same error. The check is on the
# name's text, so quoting does not help (postgres src/backend/parser/gram.y, RoleSpec and
# RoleId, unchanged across PostgreSQL 15-17).
POSTGRES_RESERVED_ROLE_NAMES = frozenset({"public", "none"})

# PostgreSQL's TYPE_FUNC_NAME_KEYWORD words (kwlist.h): gram.y's `CREATE DATABASE name` takes a
# ColId (IDENT, unreserved_keyword or col_name_keyword), so these and the reserved words are
# no bare database name; a role name (RoleId: NonReservedWord) does take them. The same 23
# words from PostgreSQL 10 to 17 (kwlist.h read at postgres/postgres 013c1178, the 10 era,
# and in a PostgreSQL 17 tree, Florents-Tselai/postgres 2112ca5b); the cluster runs 15-17.
POSTGRES_TYPE_FUNC_NAME_KEYWORDS = frozenset(
    {
        "authorization",
        "binary",
        "collation",
        "concurrently",
        "cross",
        "current_schema",
        "freeze",
        "full",
        "ilike",
        "inner",
        "is",
        "isnull",
        "join",
        "left",
        "like",
        "natural",
        "notnull",
        "outer",
        "overlaps",
        "right",
        "similar",
        "tablesample",
        "verbose",
    }
)


# CreateDBCluster DatabaseName (same model): for Aurora PostgreSQL "A database named postgres is
# always created ... Can't be a word reserved by the database engine": the reserved and
# type/function-name words above. Also refused: the databases every cluster already has, where
# CREATE DATABASE fails ("already exists"): PostgreSQL's two templates (initdb) and rdsadmin,
# RDS's own (pg_activity's --rds option leaves it out of its sums for that reason). postgres
# is the one RDS documents as always created; whether CreateDBCluster then refuses the name
# or reuses that database, no source says: it is refused here as the project's choice, so the
# application's data never shares the maintenance database.
EXISTING_DATABASES = frozenset({"postgres", "template0", "template1", "rdsadmin"})


def allowed_database_name(name: str) -> str:
    """An Aurora PostgreSQL database name the engine neither reserves nor already has."""
    lowered = name.lower()
    if lowered in EXISTING_DATABASES:
        raise refuse(
            name,
            f"{name!r} is a database every Aurora PostgreSQL cluster already has: give the "
            f"application its own (not allowed: {', '.join(sorted(EXISTING_DATABASES))})",
        )
    if lowered in POSTGRES_RESERVED_KEYWORDS:
        raise refuse(name, f"{name!r} is a reserved word of PostgreSQL (kwlist.h)")
    if lowered in POSTGRES_TYPE_FUNC_NAME_KEYWORDS:
        raise refuse(
            name,
            f"{name!r} is a PostgreSQL keyword no database may be named (kwlist.h "
            "TYPE_FUNC_NAME_KEYWORD: CREATE DATABASE takes no such bare name)",
        )
    return name


def allowed_master_username(name: str) -> str:
    """An Aurora PostgreSQL master user name neither RDS nor PostgreSQL reserves."""
    lowered = name.lower()
    if lowered in RDS_RESERVED_USERNAMES or lowered.startswith(RESERVED_USERNAME_PREFIXES):
        raise refuse(
            name,
            f"{name!r} is reserved by RDS or PostgreSQL (not allowed: "
            f"{', '.join(sorted(RDS_RESERVED_USERNAMES))}, pg_*, rds_*)",
        )
    if lowered in POSTGRES_RESERVED_ROLE_NAMES:
        raise refuse(
            name,
            f"{name!r} is a role name PostgreSQL reserves (gram.y RoleSpec: not allowed: "
            f"{', '.join(sorted(POSTGRES_RESERVED_ROLE_NAMES))})",
        )
    if lowered in POSTGRES_RESERVED_KEYWORDS:
        raise refuse(name, f"{name!r} is a reserved word of PostgreSQL (kwlist.h)")
    return name


# --- Ports ---------------------------------------------------------------------------------
# A TCP port is 1-65535 (RFC 793's 16-bit field; 0 cannot be connected to).
MAX_PORT = 65535
# The ports Istio's sidecar (Envoy and its agent) listens on in every pod of the mesh: istio.io
# content/en/docs/ops/deployment/application-requirements/index.md ("Ports used by Istio":
# "applications should not use any of the ports used by Envoy"; read at istio/istio.io
# 110ebf69), and at the pinned Istio 1.30.3 (istio/istio): the injection template's outbound
# and inbound capture ports 15001 and 15006 and its always-excluded 15090 and 15021
# (manifests/charts/istio-control/istio-discovery/files/injection-template.yaml), the agent's
# status port 15020 (istio-discovery values.yaml global.proxy.statusPort), Envoy's admin 15000
# (pilot/cmd/pilot-agent/app/request.go), the iptables probe 15002 and the agent's DNS 15053
# (tools/istio-iptables/pkg/constants/constants.go). A service port among them is taken over
# by the sidecar; pilot refuses listeners on 15001, 15006, 15021 and 15090
# (pilot/pkg/model/context.go conflictWithReservedListener). The whole 15000-15090 span is
# refused: the listed ports change inside it between releases (15009 went, 15002 came), never
# outside it; istiod's own ports (15010, 15012, 15014, 15017) are inside it too.
ISTIO_SIDECAR_PORTS = frozenset(
    {15000, 15001, 15002, 15004, 15006, 15008, 15020, 15021, 15053, 15090}
)
ISTIO_SIDECAR_PORT_RANGE = range(15000, 15091)


def service_port(port: int) -> int:
    """A service's container port that the pod's Istio sidecar does not own."""
    if port in ISTIO_SIDECAR_PORT_RANGE:
        raise refuse(
            port,
            f"{port} is inside 15000-15090, which Istio's sidecar keeps in every pod (Envoy "
            "admin, inbound, outbound, health, telemetry, DNS)",
        )
    return port


def url_port(url: str) -> str:
    """A URL whose port, if it names one, is a TCP port (1-65535)."""
    try:
        port = urlsplit(url).port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= MAX_PORT:
        raise refuse(url, f"{short(url)} has a port outside 1-{MAX_PORT}")
    return url


def host_port(address: str) -> str:
    """host[:port][/path] (an image registry) whose port, if any, is a TCP port."""
    url_port(f"//{address}")
    return address


# --- Ranges on the internet's side --------------------------------------------------------
# A request that reaches the public EKS endpoint or the internet-facing load balancer comes
# from an address routed on the internet. An allow-list entry inside a range that is not
# admits nobody (and usually means the VPC or office network was meant): the private ranges of
# RFC 1918 (section 3), and the other IPv4 special-purpose ranges no internet client's source
# can be (IANA IPv4 Special-Purpose Address Registry, "Globally Reachable: False"; RFC 6890):
# "this network" (RFC 791), shared address space behind carrier-grade NAT (RFC 6598: the
# carrier's public address is what AWS sees), loopback (RFC 1122), link-local (RFC 3927),
# IETF protocol assignments (RFC 6890), benchmarking (RFC 2544), multicast (RFC 5771) and the
# reserved 240.0.0.0/4 (RFC 1112). The documentation ranges of RFC 5737 ("MUST NOT appear on
# the public Internet", section 3) are refused in production only (StackSettings): staging's
# example stack file and the tests use them as stand-ins for a real range.
PRIVATE_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
UNROUTED_RANGES: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(network), what)
    for network, what in (
        ("0.0.0.0/8", "'this network' (RFC 791)"),
        ("100.64.0.0/10", "shared address space behind carrier-grade NAT (RFC 6598)"),
        ("127.0.0.0/8", "loopback (RFC 1122)"),
        ("169.254.0.0/16", "link-local (RFC 3927)"),
        ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
        ("198.18.0.0/15", "benchmarking (RFC 2544)"),
        ("224.0.0.0/4", "multicast (RFC 5771)"),
        ("240.0.0.0/4", "reserved (RFC 1112)"),
    )
)

DOCUMENTATION_RANGES = tuple(
    ipaddress.IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def documentation_range(cidr: str) -> ipaddress.IPv4Network | None:
    """The RFC 5737 range `cidr` lies in, if any."""
    network = ipaddress.IPv4Network(cidr, strict=False)
    return next((r for r in DOCUMENTATION_RANGES if network.subnet_of(r)), None)


def internet_ranges(cidrs: list[str]) -> list[str]:
    """IPv4 ranges a client on the internet can come from, /8 or narrower, each once.

    A range listed twice is accepted and kept once: the provider sends the list as a set
    (terraform-provider-aws internal/service/eks/cluster.go `public_access_cidrs` and
    internal/service/wafv2/ip_set.go `addresses` are schema.TypeSet), and neither API
    reference (EKS VpcConfigRequest.publicAccessCidrs, WAFv2 IPSet.Addresses) gives a
    duplicate a meaning. Host bits are refused: WAF refuses them
    (WAFInvalidParameterException, aws/aws-cdk#20003) and the provider's
    ValidCIDRNetworkAddress does too.
    """
    unique: list[str] = []
    for index, cidr in enumerate(cidrs):
        at = f"[{index}]"
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            try:
                meant = ipaddress.IPv4Network(cidr, strict=False)
            except ValueError:
                raise invalid(at, cidr, f"{short(cidr)} is not an IPv4 network") from None
            raise invalid(
                at,
                cidr,
                f"{short(cidr)} has host bits set (did you mean {str(meant)!r}?)",
            ) from None
        if network.prefixlen < 8:
            raise invalid(
                at, cidr, f"{cidr!r} is the internet, not an allow-list (allowed: /8 or narrower)"
            )
        private = next((r for r in PRIVATE_RANGES if network.subnet_of(r)), None)
        if private is not None:
            raise invalid(
                at,
                cidr,
                f"{cidr!r} is private (RFC 1918, inside {private}): no request from the "
                "internet comes from it (allowed: public ranges)",
            )
        unrouted = next(((r, what) for r, what in UNROUTED_RANGES if network.subnet_of(r)), None)
        if unrouted is not None:
            raise invalid(
                at,
                cidr,
                f"{cidr!r} is inside {unrouted[0]}, {unrouted[1]}: no request from the "
                "internet comes from it (allowed: public ranges)",
            )
        if str(network) not in unique:
            unique.append(str(network))
    return unique


# --- ACME contact ----------------------------------------------------------------------------
# Let's Encrypt refuses an account whose mailto: contact (letsencrypt/boulder v0.20260804.0,
# wfe2/wfe.go contactsToEmails, policy/pa.go ValidEmail and validNonWildcardDomain):
# - is not ASCII, or has a '?' or '#' (wfe2);
# - does not parse as an address (net/mail ParseAddress: a dot-atom local part of RFC 5322
#   atext, so o'brien, ops&sre and a=b are taken; quoted local parts are not taken here);
# - has a domain longer than 253 bytes, that is an IP address (netip.ParseAddr), ends in a dot,
#   has one label or more than 10, a label over 63 characters or one starting or ending with
#   '-', or "--" in a label's third and fourth characters unless an "xn--" label;
# - has a domain that does not end in an ICANN suffix, or is one (`iana.ExtractSuffix` over the
#   Public Suffix List boulder vendors, vendor/github.com/weppos/publicsuffix-go). The list is
#   not copied here; what can be told without it is: a TLD is letters (two or more) or an
#   "xn--" label, never digits (RFC 3696 section 2; every TLD in IANA's root zone is), and the
#   TLDs RFC 2606 and RFC 6761 reserve (test, example, invalid, localhost), local (RFC 6762)
#   and the names private networks use in their place (internal, which ICANN set aside for
#   that, corp, home, lan, intranet, private, localdomain, alt) are in no ICANN section. A
#   domain that is itself a multi-label public suffix (co.uk) is still taken here;
# - is at example.com, example.net or example.org (forbiddenMailDomains, RFC 2606).
# The domain is compared in lower case (ValidEmail lowers it first).
ACME_FORBIDDEN_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
NON_ICANN_TLDS = frozenset(
    {
        "test",
        "example",
        "invalid",
        "localhost",
        "local",
        "internal",
        "corp",
        "home",
        "lan",
        "intranet",
        "private",
        "localdomain",
        "alt",
    }
)
ACME_MAX_LABELS = 10
ACME_MAX_DOMAIN_BYTES = 253
# RFC 5322 section 3.2.3 atext, less boulder's '?' and '#'.
EMAIL_PATTERN = re.compile(
    r"(?P<local>[A-Za-z0-9!$%&'*+/=^_`{|}~-]+(?:\.[A-Za-z0-9!$%&'*+/=^_`{|}~-]+)*)"
    r"@(?P<domain>[A-Za-z0-9.-]+)"
)
TLD_PATTERN = re.compile(r"[a-z]{2,63}|xn--[a-z0-9-]{1,59}")


def acme_contact(email: str) -> str:
    match = EMAIL_PATTERN.fullmatch(email)
    if match is None:
        raise refuse(
            email,
            f"{short(email)} is not an e-mail address Let's Encrypt accepts (allowed: "
            "name@domain, the name of letters, digits and !$%&'*+/=^_`{|}~.-, no '?' or '#')",
        )
    domain = match.group("domain").lower()
    labels = domain.split(".")

    def bad(why: str) -> PydanticCustomError:
        return refuse(email, f"Let's Encrypt refuses {short(domain)}: {why}")

    if len(domain) > ACME_MAX_DOMAIN_BYTES:
        raise bad(f"longer than {ACME_MAX_DOMAIN_BYTES} bytes")
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        pass
    else:
        raise bad("an IP address, not a domain")
    if len(labels) < 2:
        raise bad("one label (allowed: a domain under a public TLD, like company.com)")
    if len(labels) > ACME_MAX_LABELS or any(
        not label
        or len(label) > 63
        or label[0] == "-"
        or label[-1] == "-"
        or (label[2:4] == "--" and not label.startswith("xn"))
        for label in labels
    ):
        raise bad("not a valid host name")
    tld = labels[-1]
    if tld in NON_ICANN_TLDS or not TLD_PATTERN.fullmatch(tld):
        raise bad(f".{tld} is no public TLD")
    if domain in ACME_FORBIDDEN_DOMAINS:
        raise refuse(
            email,
            f"Let's Encrypt refuses contacts at {domain} (not allowed: "
            f"{', '.join(sorted(ACME_FORBIDDEN_DOMAINS))}): give the team's real address",
        )
    return email


# --- Durations Istio takes -----------------------------------------------------------------
# Istio 1.30.3 takes a google.protobuf.Duration written as a Go duration: its CRDs
# (manifests/charts/base/files/crd-all.gen.yaml) check each with CEL
# `duration(self) >= duration('1ms')` ("must be a valid duration greater than 1ms"), and CEL's
# duration() and golang/protobuf's jsonpb (which Istio decodes its resources with) both parse
# with time.ParseDuration: one or more decimal numbers, each with a unit (ns, us, ms, s, m,
# h), so "15m", "1.5s" and "1h30m" are all durations. pilot then requires at least 1ms, in
# whole milliseconds (pkg/config/validation/agent/validation.go ValidateDuration: "only
# durations to ms precision are supported"). No sign and ASCII units only here ("µs" is
# Go's too, but "us" says the same).
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|ms|s|m|h)")
_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
# time.ParseDuration's ceiling: an int64 of nanoseconds (about 2562047h).
_MAX_DURATION_NS = 2**63 - 1


def _nanoseconds(duration: str) -> Fraction | None:
    """A Go duration's length in nanoseconds, or None if time.ParseDuration would refuse it."""
    if not duration:
        return None
    total = Fraction(0)
    at = 0
    while at < len(duration):
        part = _DURATION_PART.match(duration, at)
        if part is None:
            return None
        total += Fraction(part.group(1)) * _UNIT_NS[part.group(2)]
        at = part.end()
    return total if total <= _MAX_DURATION_NS else None


def istio_duration(duration: str) -> str:
    length = _nanoseconds(duration)
    if length is None:
        raise refuse(
            duration,
            f"{short(duration)} is not a duration (allowed: numbers with a unit of ms, s, m or "
            "h, like 250ms, 1.5s, 15m or 1h30m)",
        )
    if length < _UNIT_NS["ms"] or length % _UNIT_NS["ms"]:
        raise refuse(
            duration,
            f"{short(duration)} is not a whole number of milliseconds of at least 1ms, "
            "which Istio requires",
        )
    return duration


IstioDuration = Annotated[str, AfterValidator(istio_duration)]


def milliseconds(duration: str) -> int:
    length = _nanoseconds(duration)
    if length is None:
        raise ValueError(f"{duration!r} is not a duration")
    return int(length // _UNIT_NS["ms"])


# --- HPA utilization -----------------------------------------------------------------------
# A resource target's averageUtilization is an int32 "greater than 0" (kubernetes
# pkg/apis/autoscaling/validation/validation.go validateMetricTarget); it may exceed 100: the
# share is of the pods' requests, and pods may use more than they request up to their limits.
Utilization = Annotated[int, Field(ge=1, le=2**31 - 1)]

# --- Token issuers ---------------------------------------------------------------------------
# A JWT's "iss" is a StringOrURI (RFC 7519 section 4.1.1): any string, and a URI if it holds a
# ':' (section 2); Istio's RequestAuthentication asks only that it is not empty (istio
# pkg/config/validation validateJwtRule). Printable, without spaces: it is compared byte for
# byte with the token's claim.
URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")


def token_issuer(issuer: str) -> str:
    if not issuer or not issuer.isprintable() or any(c.isspace() for c in issuer):
        raise refuse(issuer, f"{short(issuer)} is not an issuer (printable, no spaces)")
    if ":" in issuer and not URI_SCHEME.fullmatch(issuer):
        raise refuse(issuer, f"{short(issuer)} holds ':' but is no URI (RFC 7519: StringOrURI)")
    return issuer


TokenIssuer = Annotated[str, AfterValidator(token_issuer)]
