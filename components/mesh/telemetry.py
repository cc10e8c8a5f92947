"""The mesh's tracing: which share of requests every proxy traces, and where spans go.

One Telemetry resource in Istio's root namespace applies to every sidecar and the gateway. It
exists only where the stack names a collector (`addons.mesh.tracing.collector`): istiod's
extension provider (components/addons/mesh.py) points there, and each service's Sidecar and
NetworkPolicy let its proxy reach it.
"""

from __future__ import annotations

import pulumi

from components.addons.mesh import MESH_NAMESPACE, TRACING_PROVIDER
from components.shared.custom_resources import labelled_custom_resource
from stacks.addon_settings import TracingSettings


class MeshTelemetry(pulumi.ComponentResource):
    def __init__(
        self, name: str, tracing: TracingSettings, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("financial-planning:mesh:MeshTelemetry", name, None, opts)
        labelled_custom_resource(
            f"{name}-tracing",
            api_version="telemetry.istio.io/v1",
            kind="Telemetry",
            name="mesh-default",
            namespace=MESH_NAMESPACE,
            component="tracing",
            spec={
                "tracing": [
                    {
                        "providers": [{"name": TRACING_PROVIDER}],
                        "randomSamplingPercentage": tracing.sampling_percent,
                    }
                ]
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})
