"""PriorityClasses: who keeps running when the cluster is short of room (see conventions)."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.shared.conventions import PRIORITY_CLASSES, standard_labels


class PriorityClasses(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("financial-planning:foundation:PriorityClasses", name, None, opts)
        for class_name, value in PRIORITY_CLASSES.items():
            k8s.scheduling.v1.PriorityClass(
                f"{name}-{class_name}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=class_name, labels=standard_labels(class_name, "scheduling")
                ),
                value=value,
                global_default=False,
                preemption_policy="PreemptLowerPriority",
                description=f"financial-planning: {class_name}",
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.register_outputs({"classes": list(PRIORITY_CLASSES)})
