"""PLACEHOLDER for one of the Financial Planning services: not the product, no business logic.

The development stack runs this image as each of its eight services when the stack file sets
`placeholderImages: true` (the product's images are not built in this repository). It answers
what the platform asks of every service (components/workloads/microservice.py and
components/shared/observability_contract.py):

- `GET /health` on `$PORT` (the container port named `http`): the startup, readiness and
  liveness probes;
- `GET /metrics` on `$METRICS_PORT` (9464, the contract's port), in Prometheus' text format: the
  contract's metric families, the HTTP duration histogram counting the requests served here,
  and `financial_planning_placeholder_info` saying which service this stands in for.

Anything else on `$PORT` answers 404, saying it is a placeholder. Standard library only: the
image holds this one file.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
DEFAULT_METRICS_PORT = 9464

# OpenTelemetry's advised boundaries for http.server.request.duration (semantic conventions,
# HTTP metrics), in seconds.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

DURATION = "http_server_request_duration_seconds"
# The contract's families (name, type, help), as components/shared/observability_contract.py states
# them; tests/test_devloop.py holds the two to each other.
FAMILIES = (
    (
        DURATION,
        "histogram",
        "Duration of HTTP requests the service answered, by route and status",
    ),
    (
        "financial_planning_user_registrations_total",
        "counter",
        "Completed user registrations (user-service)",
    ),
    (
        "financial_planning_transactions_total",
        "counter",
        "Bank transactions processed (banking-service), by type and outcome",
    ),
    (
        "financial_planning_goal_completions_total",
        "counter",
        "Financial goals reaching their target (financial-planning-api)",
    ),
    (
        "financial_planning_authentication_failures_total",
        "counter",
        "Failed sign-ins and rejected tokens (user-service, graphql-gateway)",
    ),
    (
        "financial_planning_suspicious_activity_total",
        "counter",
        "Requests flagged by the services' fraud and abuse checks",
    ),
)
PLACEHOLDER_INFO = "financial_planning_placeholder_info"

LabelSet = tuple[tuple[str, str], ...]


class Durations:
    """The HTTP duration histogram, one series per (method, route, status)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[LabelSet, tuple[list[int], float, int]] = {}

    def observe(self, labels: LabelSet, seconds: float) -> None:
        with self._lock:
            counts, total, count = self._series.get(labels, ([0] * len(BUCKETS), 0.0, 0))
            counts = [c + (seconds <= bound) for c, bound in zip(counts, BUCKETS, strict=True)]
            self._series[labels] = (counts, total + seconds, count + 1)

    def samples(self) -> list[str]:
        with self._lock:
            series = sorted(self._series.items())
        lines = []
        for labels, (counts, total, count) in series:
            for bound, cumulative in zip(BUCKETS, counts, strict=True):
                bucket = render((*labels, ("le", str(bound))))
                lines.append(f"{DURATION}_bucket{bucket} {cumulative}")
            lines.append(f"{DURATION}_bucket{render((*labels, ('le', '+Inf')))} {count}")
            lines.append(f"{DURATION}_sum{render(labels)} {total}")
            lines.append(f"{DURATION}_count{render(labels)} {count}")
        return lines


def render(labels: LabelSet) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")

    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in labels) + "}"


def exposition(service: str, durations: Durations) -> str:
    """The Prometheus text format (version 0.0.4) of everything this placeholder exports."""
    lines = []
    for name, kind, help_text in FAMILIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        if name == DURATION:
            lines += durations.samples()
        # The business counters have no series: a placeholder does no business.
    lines += [
        f"# HELP {PLACEHOLDER_INFO} Set to 1 by the placeholder image standing in for a service",
        f"# TYPE {PLACEHOLDER_INFO} gauge",
        f"{PLACEHOLDER_INFO}{render((('service', service),))} 1",
    ]
    return "\n".join(lines) + "\n"


def serve(
    service: str, bind: str, port: int, metrics_port: int
) -> tuple[ThreadingHTTPServer, ThreadingHTTPServer]:
    durations = Durations()

    class Quiet(BaseHTTPRequestHandler):
        server_version = "placeholder-service"

        def log_message(self, format: str, *args: object) -> None:
            # One line per probe would bury the startup line.
            pass

        def answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    class Service(Quiet):
        def do_GET(self) -> None:
            started = time.perf_counter()
            path = self.path.split("?", 1)[0]
            body = {"service": service, "placeholder": True}
            route: LabelSet
            if path == HEALTH_PATH:
                status, route = 200, (("http_route", HEALTH_PATH),)
                body["status"] = "ok"
            else:
                # No route matched: OpenTelemetry sets http.route only when one did.
                status, route = 404, ()
                body["error"] = f"{service} is a placeholder: it serves {HEALTH_PATH} only"
            self.answer(status, json.dumps(body).encode(), "application/json")
            labels = (
                ("http_request_method", "GET"),
                *route,
                ("http_response_status_code", str(status)),
            )
            durations.observe(labels, time.perf_counter() - started)

    class Metrics(Quiet):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != METRICS_PATH:
                self.answer(404, b"metrics are at /metrics\n", "text/plain")
                return
            text = exposition(service, durations).encode()
            self.answer(200, text, "text/plain; version=0.0.4; charset=utf-8")

    servers = (
        ThreadingHTTPServer((bind, port), Service),
        ThreadingHTTPServer((bind, metrics_port), Metrics),
    )
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return servers


def port_from(variable: str, default: int | None = None) -> int:
    value = os.environ.get(variable, "" if default is None else str(default))
    if not re.fullmatch(r"[0-9]{1,5}", value) or int(value) > 65535:
        sys.exit(f"placeholder: {variable}={value!r} is not a port number")
    return int(value)


def main() -> None:
    service = os.environ.get("SERVICE_NAME", "unnamed-service")
    servers = serve(
        service,
        os.environ.get("BIND_ADDRESS", "0.0.0.0"),
        port_from("PORT"),
        port_from("METRICS_PORT", DEFAULT_METRICS_PORT),
    )
    stop = threading.Event()

    # As PID 1 in its container, the process gets no default SIGTERM action: without a handler
    # every pod deletion would wait out the whole grace period.
    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The ports bound (0 asks for any free one), as tests read them.
    health, metrics = (f"{s.server_address[0]!s}:{s.server_port}" for s in servers)
    print(
        f"PLACEHOLDER for {service} (not the product): health on {health}{HEALTH_PATH}, "
        f"metrics on {metrics}{METRICS_PATH}",
        flush=True,
    )
    stop.wait()
    for server in servers:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
