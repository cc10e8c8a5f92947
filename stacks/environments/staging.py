"""Staging: production's shape, scaled down, single NAT, short retention, nothing protected."""

from typing import Any

from stacks.environments.production import DEFAULTS as PRODUCTION
from stacks.merge import deep_merge

DEFAULTS: dict[str, Any] = deep_merge(
    PRODUCTION,
    {
        "vpcCidr": "10.1.0.0/16",
        "natGateways": "single",
        "controlPlaneLogRetentionDays": 30,
        "flowLogRetentionDays": 30,
        "nodeGroups": {
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
        },
        "application": {"namespace": "financial-planning-staging", "logLevel": "debug"},
        "services": {
            "financial-planning-api": {"replicas": 2},
            "simulation-service": {"replicas": 2},
            "user-service": {"replicas": 2},
            "banking-service": {"replicas": 2},
            "ml-service": {"persistentVolume": {"sizeGib": 20}},
            "notification-service": {"replicas": 1},
            "document-service": {"replicas": 1},
            "graphql-gateway": {"replicas": 2},
        },
        "addons": {"externalSecrets": {"replicas": 1}},
        "retention": {"secretRecoveryWindowDays": 7, "documentVersionDays": 30},
        "data": {
            "database": {
                "instanceClass": "db.t4g.medium",
                "allocatedStorageGib": 20,
                "maxAllocatedStorageGib": 100,
                "multiAz": False,
                "readReplicas": 0,
                "backupRetentionDays": 7,
                "performanceInsightsRetentionDays": 7,
            },
            "cache": {"nodeType": "cache.t4g.small", "nodes": 1, "snapshotRetentionDays": 1},
            "search": {
                "instanceType": "m6g.large.search",
                "instanceCount": 1,
                "dedicatedMasterType": None,
                "volumeSizeGib": 20,
            },
        },
        "protect": False,
    },
)
