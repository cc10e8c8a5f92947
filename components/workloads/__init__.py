"""The workloads layer: the application namespace, its configuration and the eight services."""
