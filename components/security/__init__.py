"""The security layer: network segmentation, RBAC personas and the audit trail. It comes after
the workloads it guards, whose namespaces its objects live in."""
