"""A model of when a caller's Envoy ejects a pod (outlier detection), from the upstream sources.

Istio 1.30.3 (`git show 1.30.3:pilot/pkg/networking/core/cluster_traffic_policy.go`,
`applyOutlierDetection`): `consecutive5xxErrors` -> consecutive_5xx (enforcing 100 when above
0); `consecutiveGatewayErrors` -> consecutive_gateway_failure (enforcing 100 when above 0,
else Envoy's enforcing default 0); `splitExternalLocalOriginErrors` -> split mode, and
`consecutiveLocalOriginFailures` (only when above 0) -> consecutive_local_origin_failure with
enforcing 100; success-rate ejection off. Istio's validation (pkg/config/validation/
validation.go `validateOutlierDetection`) refuses consecutiveLocalOriginFailures without the
split. The DestinationRule fields: istio/api 2e43f07b (the version Istio 1.30.3's go.mod pins),
networking/v1alpha3/destination_rule.proto `OutlierDetection`.

Envoy (newest stored main; the pinned 4f1e006e is not stored here):
source/common/upstream/outlier_detection_impl.h defaults (consecutive_5xx 5 enforcing 100,
consecutive_gateway_failure 5 enforcing 0, consecutive_local_origin_failure 5 enforcing 100);
outlier_detection_impl.cc `putHttpResponseCode` (a 5xx adds to consecutive_5xx, a 502/503/504
also to consecutive_gateway_failure, anything else resets both), `putResultNoLocalExternalSplit`
(a result with a code is that code; else `resultToHttpCode`: LocalOriginTimeout 504,
LocalOriginConnectFailed 503, LocalOriginConnectSuccess nothing), `putResultWithLocalExternalSplit`
(LocalOriginConnectSuccess resets consecutive_local_origin_failure; LocalOriginTimeout and
LocalOriginConnectFailed add to it). What the HTTP router reports (router.cc, upstream_request.cc):
every try that gets a connection reports LocalOriginConnectSuccess (`onPoolReady`), then the
response's status (`onUpstreamHeaders`: `putHttpResponseCode`); a per-try or route timeout
reports LocalOriginTimeout with the timeout's code, 504 (`onPerTryTimeoutCommon`,
`onResponseTimeout`); a connect failure or reset reports LocalOriginConnectFailed
(`onUpstreamReset`), except an Overflow of the caller's own circuit breaker, which reports
nothing (envoyproxy/envoy#25487).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

# What one try does at a pod, as its caller's proxy sees it.
Outcome = Literal["ok", "5xx", "timeout", "connect-failure", "reset", "caller-overflow"]

ENVOY_CONSECUTIVE_5XX = 5
ENVOY_CONSECUTIVE_GATEWAY_FAILURE = 5
ENVOY_CONSECUTIVE_LOCAL_ORIGIN_FAILURE = 5


@dataclass(frozen=True)
class Detector:
    """Envoy's outlier detection config as Istio writes it for a DestinationRule."""

    consecutive_5xx: int | None
    consecutive_gateway: int | None
    split: bool
    consecutive_local_origin: int | None


def from_destination_rule(outlier: dict[str, Any]) -> Detector:
    """applyOutlierDetection: each threshold enforced (100) where set above 0; Envoy's
    defaults elsewhere (consecutive 5xx: 5 and enforced; gateway: not enforced; local origin,
    in split mode: 5 and enforced)."""
    split = bool(outlier.get("splitExternalLocalOriginErrors", False))
    local = outlier.get("consecutiveLocalOriginFailures")
    assert split or not local, "Istio refuses consecutiveLocalOriginFailures without the split"
    five = outlier.get("consecutive5xxErrors")
    gateway = outlier.get("consecutiveGatewayErrors")
    local_threshold = local or ENVOY_CONSECUTIVE_LOCAL_ORIGIN_FAILURE
    return Detector(
        consecutive_5xx=ENVOY_CONSECUTIVE_5XX if five is None else (five or None),
        consecutive_gateway=gateway or None,
        split=split,
        consecutive_local_origin=local_threshold if split else None,
    )


@dataclass
class PodMonitor:
    """One caller's view of one pod (DetectorHostMonitorImpl)."""

    detector: Detector
    five_xx: int = 0
    gateway: int = 0
    local_origin: int = 0
    ejected_by: list[str] = field(default_factory=list)

    def _code(self, code: int) -> None:
        if 500 <= code <= 599:
            if code in (502, 503, 504):
                self.gateway += 1
                if self.gateway == self.detector.consecutive_gateway:
                    self.ejected_by.append("consecutive_gateway_failure")
            else:
                self.gateway = 0
            self.five_xx += 1
            if self.five_xx == self.detector.consecutive_5xx:
                self.ejected_by.append("consecutive_5xx")
        else:
            self.five_xx = self.gateway = 0

    def _local(self, failed: bool, code_without_split: int | None) -> None:
        if not self.detector.split:
            if code_without_split is not None:
                self._code(code_without_split)
            return
        if failed:
            self.local_origin += 1
            if self.local_origin == self.detector.consecutive_local_origin:
                self.ejected_by.append("consecutive_local_origin_failure")
        else:
            self.local_origin = 0

    def try_(self, outcome: Outcome) -> None:
        """What the router reports for one try ending so."""
        if outcome == "caller-overflow":
            return
        if outcome == "connect-failure":
            self._local(True, 503)
            return
        # The pool gave the try a connection.
        self._local(False, None)
        if outcome == "ok":
            self._code(200)
        elif outcome == "5xx":
            self._code(503)
        elif outcome == "timeout":
            self._local(True, 504)
        elif outcome == "reset":
            self._local(True, 503)


def ejected(outlier: dict[str, Any], outcomes: Iterable[Outcome]) -> list[str]:
    """The ejections a pod gets from a caller that sees these tries in a row."""
    monitor = PodMonitor(from_destination_rule(outlier))
    for outcome in outcomes:
        monitor.try_(outcome)
    return monitor.ejected_by
