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
        # General and compute on production's xlarge types, as production's generation 2: on
        # large nodes the services at their maximum with their sidecars and the controllers
        # packed into all six general nodes (four with a zone lost), no room to spare; staging
        # also rehearses production's two-step move to a new generation (docs/cluster.md,
        # "Node group generations"). Generation 1 is each group as first deployed.
        "nodeGroups": {
            "general": {
                "minSize": 1,
                # The maxima pack into three (stacks/capacity.py), the minima into two of the
                # two left with a zone lost.
                "maxSize": 4,
                "desiredSize": 2,
                "previousGeneration": {"generation": 1, "instanceTypes": ["m5.large", "m5.xlarge"]},
            },
            "compute": {
                "instanceTypes": ["c5.xlarge", "c5.2xlarge"],
                "minSize": 1,
                "maxSize": 3,
                "desiredSize": 1,
                "previousGeneration": {"generation": 1, "instanceTypes": ["c5.large", "c5.xlarge"]},
            },
            "memory": {"instanceTypes": ["r5.large"], "minSize": 0, "maxSize": 2, "desiredSize": 1},
            # Two: ml-service's pod comes back in another zone when its zone is lost, and a
            # rollout starts the new pod before it stops the old one (components/workloads).
            "gpu": {"instanceTypes": ["g4dn.xlarge"], "minSize": 0, "maxSize": 2, "desiredSize": 0},
        },
        "application": {"namespace": "financial-planning-staging", "logLevel": "debug"},
        "services": {
            "financial-planning-api": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}},
            "simulation-service": {"autoscaling": {"minReplicas": 1, "maxReplicas": 4}},
            "user-service": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}},
            "banking-service": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}},
            "ml-service": {"replicas": 1, "cacheVolume": {"sizeGib": 20}},
            "notification-service": {"autoscaling": {"minReplicas": 1, "maxReplicas": 2}},
            "document-service": {"autoscaling": {"minReplicas": 1, "maxReplicas": 2}},
            "graphql-gateway": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}},
        },
        "addons": {
            "externalSecrets": {"replicas": 1},
            "metricsServer": {"replicas": 1},
            "clusterAutoscaler": {
                "replicas": 1,
                # Staging gives idle nodes back sooner.
                "scaleDownUnneededTime": "5m",
                "scaleDownDelayAfterAdd": "5m",
            },
            "prometheusAdapter": {"replicas": 1},
            "reloader": {"replicas": 1},
            "loadBalancerController": {"replicas": 1},
            "certManager": {"replicas": 1},
            "ingressGateway": {"replicas": 2},
            "rateLimiter": {"replicas": 1},
            "logShipper": {"retentionDays": 7},
            "jaeger": {"replicas": 1, "retentionDays": 3},
            "mesh": {
                "replicas": 1,
                # Staging's sidecars may call any host (the registered ones are still listed:
                # Plaid's sandbox instead of production).
                "tracing": {"samplingPercent": 10.0},
                "outbound": {
                    "registryOnly": False,
                    "externalHosts": {"banking-service": ["sandbox.plaid.com"]},
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "256Mi"},
                    "limits": {"memory": "512Mi"},
                },
            },
            "monitoring": {
                "replicas": 1,
                "resources": {
                    "requests": {"cpu": "250m", "memory": "1Gi"},
                    "limits": {"memory": "2Gi"},
                },
                "retentionDays": 7,
                "storageGib": 30,
                "alertmanagerReplicas": 1,
            },
        },
        # A tighter per-IP limit: staging's clients are the team and its test runners.
        "edge": {
            "waf": {"requestsPerIp": 1000, "logRetentionDays": 30},
            "rateLimits": {"requestsPerMinutePerIp": 150},
        },
        "retention": {"secretRecoveryWindowDays": 7, "documentVersionDays": 30},
        "data": {
            "database": {
                "instanceClass": "db.t4g.medium",
                # The writer alone: the reader endpoint then also reaches it.
                "instances": 1,
                "backupRetentionDays": 7,
                "performanceInsightsRetentionDays": 7,
                "disasterRecovery": None,
                "masterRotationDays": 30,
            },
            "cache": {"nodeType": "cache.t4g.small", "nodes": 1, "snapshotRetentionDays": 1},
            "search": {
                "instanceType": "m6g.large.search",
                "instanceCount": 1,
                "dedicatedMasterType": None,
                "volumeSizeGib": 20,
                "logRetentionDays": 30,
            },
        },
        "access": {"developersMayEdit": True},
        # The account's organisation-wide GuardDuty and trail cover staging.
        "security": {"guardDuty": False, "cloudTrail": False},
        "protect": False,
    },
)
