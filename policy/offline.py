"""Runs the pack's policies over an offline render (`offline.engine.StackRun`), handing each
policy the objects pulumi-policy's analyzer would build from the engine's requests.

- Resource policies get a `ResourceValidationArgs` per registered resource: its inputs (the
  engine analyzes inputs), its options and its provider.
- Stack policies get one `StackValidationArgs`: every resource with its outputs (the mocks'
  outputs plus `id`, which bridged providers keep among the outputs), options, parent,
  dependencies and property dependencies.

Properties are wrapped in pulumi-policy's own unknown-checking proxies, so the policies read
`Mapping`/`Sequence` proxies offline exactly as they do under the CLI, and a value the render
marks "[unknown]" raises `UnknownValueError` when read, as an unknown does during preview.

Only the tests import this module (the pack itself never does): it needs the program's
`offline` package, which the pack's own virtualenv does not have.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy

from offline.engine import RecordedResource, StackRun
from policy.policies import build_policies

# How offline.engine.plain writes a value the mocks left unknown.
RENDERED_UNKNOWN = "[unknown]"


@dataclass(frozen=True)
class Violation:
    policy: str
    urn: str
    message: str


def _engine_value(value: Any) -> Any:
    """A rendered value as the engine would send it: unknowns as pulumi-policy's sentinel. A
    copy: every dict and list is new, and the rest must be strings, numbers, booleans or None
    (what the render records), so a policy that changes what it is handed changes nothing
    else, as when the analyzer deserializes each request anew."""
    if isinstance(value, dict):
        return {key: _engine_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_engine_value(item) for item in value]
    if not isinstance(value, (str, int, float, type(None))):  # bool is an int
        raise TypeError(f"not a JSON value, which the copy would share: {value!r}")
    return UNKNOWN_STRING_VALUE if value == RENDERED_UNKNOWN else value


def _seconds(duration: str) -> float:
    """A Go duration ("30m", "1h30m", "90s") in seconds; 0 if unset or unreadable."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration or "")
    return sum(float(amount) * units[unit] for amount, unit in parts)


def resource_options(resource: RecordedResource) -> PolicyResourceOptions:
    timeouts = resource.custom_timeouts
    return PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=list(resource.ignore_changes),
        delete_before_replace=None,
        aliases=list(resource.aliases),
        custom_timeouts=PolicyCustomTimeouts(
            _seconds(timeouts.get("create", "")),
            _seconds(timeouts.get("update", "")),
            _seconds(timeouts.get("delete", "")),
        ),
        additional_secret_outputs=[],
        parent=resource.parent or None,
    )


class Render:
    """One render, indexed the way the analyzer's requests are assembled."""

    def __init__(self, run: StackRun) -> None:
        self.run = run
        self.by_urn = {r.urn: r for r in run.resources}
        # Each resource's inputs and outputs as the engine sends them, converted once for every
        # policy. Each policy still gets a proxy of its own: pulumi-policy builds it of new
        # dicts and lists (pulumi_policy 1.21.0 proxy.py, `_proxy_helper`), so what one policy
        # changes no other sees, as when the analyzer deserializes the request per policy.
        self._sent: dict[tuple[str, str], dict[str, Any]] = {}

    def _proxy(self, resource: RecordedResource, what: str) -> Mapping[str, Any]:
        key = (resource.urn, what)
        if key not in self._sent:
            found = resource.inputs if what == "inputs" else self.outputs(resource)
            self._sent[key] = _engine_value(dict(found))
        return unknown_checking_proxy(self._sent[key])

    def provider(self, resource: RecordedResource) -> PolicyProviderResource | None:
        # A provider reference is "<urn>::<id>".
        found = self.by_urn.get(resource.provider.rsplit("::", 1)[0]) if resource.provider else None
        if found is None:
            return None
        return PolicyProviderResource(
            found.type, self._proxy(found, "inputs"), found.urn, found.name
        )

    def resource_args(self, resource: RecordedResource) -> ResourceValidationArgs:
        return ResourceValidationArgs(
            resource_type=resource.type,
            props=self._proxy(resource, "inputs"),
            urn=resource.urn,
            name=resource.name,
            opts=resource_options(resource),
            provider=self.provider(resource),
        )

    def outputs(self, resource: RecordedResource) -> dict[str, Any]:
        """What a stack policy sees of the resource: its outputs (a component's registered
        outputs), with the id among them as bridged providers keep it."""
        if not resource.custom:
            return dict(self.run.outputs.get(resource.urn, {}))
        return {**resource.state, "id": resource.id}

    def stack_args(self) -> StackValidationArgs:
        policy_resources = {
            r.urn: PolicyResource(
                resource_type=r.type,
                props=self._proxy(r, "outputs"),
                urn=r.urn,
                name=r.name,
                opts=resource_options(r),
                provider=self.provider(r),
                parent=None,
                dependencies=[],
                property_dependencies={},
            )
            for r in self.run.resources
        }
        for recorded in self.run.resources:
            resource = policy_resources[recorded.urn]
            resource.parent = policy_resources.get(recorded.parent)
            resource.dependencies = [
                policy_resources[urn] for urn in recorded.dependencies if urn in policy_resources
            ]
            resource.property_dependencies = {
                key: [policy_resources[d.urn] for d in sources]
                for key, sources in self.property_dependencies(recorded).items()
            }
        return StackValidationArgs(list(policy_resources.values()))

    def property_dependencies(
        self, resource: RecordedResource
    ) -> dict[str, list[RecordedResource]]:
        """Which dependencies each input came from. The render keeps only the resource's
        dependencies, not per property; a dependency whose id appears in an input is taken as
        that input's source (as when `bucket=bucket.id` is passed)."""
        dependencies = [self.by_urn[u] for u in resource.dependencies if u in self.by_urn]
        found: dict[str, list[RecordedResource]] = {}
        for key, value in resource.inputs.items():
            strings = set(_strings(value))
            sources = [d for d in dependencies if d.id and d.id in strings]
            if sources:
                found[key] = sources
        return found


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def pack_policies(run: StackRun) -> list[Policy]:
    """The pack's policies as they would run on `run`'s stack."""
    return build_policies(lambda: run.stack)


def evaluate(run: StackRun, policies: Sequence[Policy] | None = None) -> list[Violation]:
    """Every violation that `policies` (by default the whole pack) report on `run`.

    Unlike the analyzer, nothing here catches `UnknownValueError`: a policy that lets one
    escape would be skipped during a real preview, so offline it fails loudly instead.
    """
    render = Render(run)
    found: list[Violation] = []

    def reporter(policy: Policy, default_urn: str = "") -> Callable[[str, str | None], None]:
        def report(message: str, urn: str | None = None) -> None:
            found.append(Violation(policy.name, urn or default_urn, message))

        return report

    for policy in pack_policies(run) if policies is None else policies:
        if isinstance(policy, ResourceValidationPolicy):
            for resource in run.resources:
                args = render.resource_args(resource)
                _must_be_sync(policy.validate(args, reporter(policy, resource.urn)))
        elif isinstance(policy, StackValidationPolicy):
            _must_be_sync(policy.validate(render.stack_args(), reporter(policy)))
        else:
            raise TypeError(f"{policy.name}: neither a resource nor a stack policy")
    return found


def _must_be_sync(result: object) -> None:
    if result is not None:
        raise TypeError("the pack's validations are synchronous; this one returned an awaitable")
