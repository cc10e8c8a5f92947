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
                # Six: the services at their maximum with their sidecars, and the controllers,
                # beside the node agents (stacks/capacity.py).
                "maxSize": 6,
                "desiredSize": 2,
            },
            "compute": {
                "instanceTypes": ["c5.large", "c5.xlarge"],
                "minSize": 1,
                "maxSize": 5,
                "desiredSize": 1,
            },
            "memory": {"instanceTypes": ["r5.large"], "minSize": 0, "maxSize": 2, "desiredSize": 1},
            "gpu": {"instanceTypes": ["g4dn.xlarge"], "minSize": 0, "maxSize": 1, "desiredSize": 0},
        },
        "application": {"namespace": "financial-planning-staging", "logLevel": "debug"},
        "services": {
            "financial-planning-api": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}},
            # A c5.large leaves a pod 2466Mi beside the node agents (the organisation's
            # GuardDuty agent among them) and its sidecar: the VPA stays below.
            "simulation-service": {
                "autoscaling": {"minReplicas": 1, "maxReplicas": 4},
                "verticalScaling": {"maxAllowed": {"memory": "2304Mi"}},
            },
            "user-service": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}},
            "banking-service": {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}},
            "ml-service": {"cacheVolume": {"sizeGib": 20}},
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
