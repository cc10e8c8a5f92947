"""Per-environment defaults, in the stack files' own camelCase shape.

A stack file states only what differs from its environment's defaults; the loader deep-merges it
over these. Account-specific values (admin principals, public endpoint CIDRs) have no default.
"""

from typing import Any

from stacks.catalog import PRODUCTION_SERVICES, STAGING_SERVICES
from stacks.data_settings import PRODUCTION_DATA, STAGING_DATA
from stacks.merge import deep_merge

# Seed sizes: general m5.large-2xlarge 2-20, compute c5.large-4xlarge 3-30,
# memory r5.large-4xlarge 1-10, GPU p3.2xlarge and g4dn.xlarge 0-5. Types are listed smallest
# first: the cluster autoscaler plans with the first type and on-demand managed node groups
# launch in list order, so larger types only ever act as fallbacks (see README, "Node groups").
_PRODUCTION_NODE_GROUPS: dict[str, Any] = {
    "general": {
        "instanceTypes": ["m5.large", "m5.xlarge", "m5.2xlarge"],
        "minSize": 2,
        "maxSize": 20,
        "desiredSize": 3,
    },
    "compute": {
        "instanceTypes": ["c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge"],
        "minSize": 3,
        "maxSize": 30,
        "desiredSize": 3,
    },
    "memory": {
        "instanceTypes": ["r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge"],
        "minSize": 1,
        "maxSize": 10,
        "desiredSize": 1,
    },
    "gpu": {
        "instanceTypes": ["g4dn.xlarge", "p3.2xlarge"],
        "minSize": 0,
        "maxSize": 5,
        "desiredSize": 0,
        "diskSizeGib": 100,
        "amiType": "AL2023_x86_64_NVIDIA",
        "taints": [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}],
    },
}

_STAGING_NODE_GROUPS: dict[str, Any] = {
    "general": {
        "instanceTypes": ["m5.large", "m5.xlarge"],
        "minSize": 1,
        "maxSize": 4,
        "desiredSize": 2,
    },
    "compute": {
        "instanceTypes": ["c5.large", "c5.xlarge"],
        "minSize": 1,
        "maxSize": 4,
        "desiredSize": 1,
    },
    "memory": {"instanceTypes": ["r5.large"], "minSize": 0, "maxSize": 2, "desiredSize": 1},
    "gpu": {"instanceTypes": ["g4dn.xlarge"], "minSize": 0, "maxSize": 1, "desiredSize": 0},
}

_COMMON: dict[str, Any] = {
    "kubernetesVersion": "1.33",
    "controlPlaneLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "endpointPublicAccessCidrs": [],
    "tags": {"application": "financial-planning", "managed-by": "pulumi"},
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "production": {
        **_COMMON,
        "vpcCidr": "10.0.0.0/16",
        "natGateways": "perAz",
        "controlPlaneLogRetentionDays": 365,
        "flowLogRetentionDays": 365,
        "nodeGroups": _PRODUCTION_NODE_GROUPS,
        "application": {"namespace": "financial-planning", "logLevel": "info"},
        "services": PRODUCTION_SERVICES,
        "addonReplicas": 2,
        "retention": {"secretRecoveryWindowDays": 30, "documentVersionDays": 365},
        "data": PRODUCTION_DATA,
        "protect": True,
    },
    "staging": {
        **_COMMON,
        "vpcCidr": "10.1.0.0/16",
        "natGateways": "single",
        "controlPlaneLogRetentionDays": 30,
        "flowLogRetentionDays": 30,
        # Staging starts from production's groups and scales them down.
        "nodeGroups": {
            name: {**group, **_STAGING_NODE_GROUPS[name]}
            for name, group in _PRODUCTION_NODE_GROUPS.items()
        },
        "application": {"namespace": "financial-planning-staging", "logLevel": "debug"},
        "services": {
            name: deep_merge(service, STAGING_SERVICES.get(name, {}))
            for name, service in PRODUCTION_SERVICES.items()
        },
        "addonReplicas": 1,
        "retention": {"secretRecoveryWindowDays": 7, "documentVersionDays": 30},
        "data": deep_merge(PRODUCTION_DATA, STAGING_DATA),
        "protect": False,
    },
}
