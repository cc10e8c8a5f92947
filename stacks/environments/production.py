"""Production: the seed's sizes, highly available, everything stateful protected.

Account-specific values (admin principals, public endpoint CIDRs) have no default: the stack
file states them.
"""

from typing import Any

from stacks.catalog import SERVICE_CATALOG

# Seed sizes: general m5.large-2xlarge 2-20, compute c5.large-4xlarge 3-30,
# memory r5.large-4xlarge 1-10, GPU p3.2xlarge and g4dn.xlarge 0-5. Types are listed smallest
# first: the cluster autoscaler plans with the first type and on-demand managed node groups
# launch in list order, so larger types only ever act as fallbacks (see docs/cluster.md, "Node
# groups").
# General and compute start at xlarge: beside what every node runs (the kubelet's reservation,
# the add-ons' and GuardDuty's agents: stacks/capacity.py) a large node leaves 1430m CPU, and
# twenty of them cannot hold the general class's maxima (about 32 cores); a c5.large leaves
# 2594Mi, less than simulation's largest pod (its VPA may raise it to 2.5 GiB, plus sidecar).
#
# Moving general and compute to xlarge changes their instance types, which EKS cannot change in
# place: generation 2 of each is a new group, created beside generation 1 (the groups as first
# deployed, large first), which stays until its nodes are drained (docs/cluster.md, "Node group
# generations"). Step 2 of that procedure removes the two `previousGeneration` entries.
NODE_GROUPS: dict[str, Any] = {
    "general": {
        "instanceTypes": ["m5.xlarge", "m5.2xlarge"],
        "minSize": 2,
        "maxSize": 20,
        "desiredSize": 3,
        "generation": 2,
        "previousGeneration": {
            "generation": 1,
            "instanceTypes": ["m5.large", "m5.xlarge", "m5.2xlarge"],
        },
    },
    "compute": {
        "instanceTypes": ["c5.xlarge", "c5.2xlarge", "c5.4xlarge"],
        "minSize": 3,
        "maxSize": 30,
        "desiredSize": 3,
        "generation": 2,
        "previousGeneration": {
            "generation": 1,
            "instanceTypes": ["c5.large", "c5.xlarge", "c5.2xlarge", "c5.4xlarge"],
        },
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

DATA: dict[str, Any] = {
    "database": {
        "engineVersion": "16.6",
        "instanceClass": "db.r6g.large",
        # A writer and two readers, one per zone.
        "instances": 3,
        "backupRetentionDays": 30,
        "performanceInsightsRetentionDays": 93,
        "disasterRecovery": {"region": "us-west-2", "everyHours": 4, "retentionDays": 35},
    },
    "cache": {
        "engineVersion": "7.1",
        "nodeType": "cache.r6g.large",
        "nodes": 3,
        "snapshotRetentionDays": 7,
    },
    "search": {
        "engineVersion": "OpenSearch_2.19",
        "instanceType": "r6g.large.search",
        "instanceCount": 3,
        "dedicatedMasterType": "m6g.large.search",
        "volumeSizeGib": 200,
        # The domain's audit, error and slow logs in CloudWatch: a year.
        "logRetentionDays": 365,
    },
}


def _ejection(
    errors: int, local: int, interval: str, ejection: str, max_percent: int
) -> dict[str, Any]:
    """Outlier detection: eject a pod after `errors` 5xx responses in a row, or `local` failed
    connections in a row, for `ejection` (checked every `interval`)."""
    return {
        "consecutive5xxErrors": errors,
        "consecutiveLocalOriginFailures": local,
        "interval": interval,
        "baseEjectionTime": ejection,
        "maxEjectionPercent": max_percent,
    }


def _pool(connections: int, pending: int) -> dict[str, Any]:
    """Connection pool limits; a tenth of the connections as the bound on retries in flight
    (Istio's default is 2^32-1: a failing service would get every retry at once)."""
    return {
        "maxConnections": connections,
        "maxPendingRequests": pending,
        "maxRetries": max(1, connections // 10),
    }


# The seed's traffic management: least-request for the API, round-robin elsewhere; the API
# balanced, banking conservative, ML patient. No class cuts a try short (no perTryTimeout): a
# request that runs out of its route's timeout ends there and is never run again, and a slow
# pod is not ejected for it. Idempotent requests of the API and standard classes are retried
# on gateway errors (502, 503, 504 responses and resets); banking's only where the request
# never reached the service or was refused (502, 503); any other request only where it never
# reached the service, and banking's never (stacks/traffic_settings.py has Envoy's rules).
TRAFFIC: dict[str, Any] = {
    "classes": {
        "api": {
            "loadBalancing": "LEAST_REQUEST",
            "timeout": "15s",
            "retries": {
                "attempts": 2,
                "retryOn": ["gateway-error", "connect-failure", "refused-stream", "unavailable"],
                "unsentAttempts": 2,
            },
            "connectionPool": _pool(1000, 1000),
            "outlierDetection": _ejection(5, 5, "30s", "30s", 50),
        },
        # Short: one retry of an idempotent request that never reached banking-service or that
        # it refused, within 5 s; none of anything else.
        "banking": {
            "loadBalancing": "ROUND_ROBIN",
            "timeout": "5s",
            "retries": {
                "attempts": 1,
                "retryOn": ["connect-failure", "refused-stream", "reset-before-request"],
                "statusCodes": [502, 503],
                "methods": "idempotent",
            },
            "connectionPool": _pool(200, 100),
            "outlierDetection": _ejection(2, 2, "5s", "60s", 50),
        },
        # Inference takes long and costs a GPU: two minutes for one try, a single retry of any
        # request that never reached the service, and none of one that timed out. The edge
        # gives a user's request the API's 15 s: these two minutes are for calls the API and
        # simulation-service make outside a user's request (jobs the client polls).
        "ml": {
            "loadBalancing": "ROUND_ROBIN",
            "timeout": "120s",
            "retries": {
                "attempts": 1,
                "retryOn": ["connect-failure", "refused-stream", "reset-before-request"],
                "methods": "all",
            },
            "connectionPool": _pool(50, 50),
            "outlierDetection": _ejection(5, 5, "30s", "30s", 100),
        },
        "standard": {
            "loadBalancing": "ROUND_ROBIN",
            "timeout": "30s",
            "retries": {
                "attempts": 2,
                "retryOn": ["gateway-error", "connect-failure", "refused-stream"],
                "unsentAttempts": 2,
            },
            "connectionPool": _pool(500, 500),
            "outlierDetection": _ejection(5, 5, "30s", "30s", 50),
        },
    },
    "serviceClasses": {
        "financial-planning-api": "api",
        "graphql-gateway": "api",
        "banking-service": "banking",
        "ml-service": "ml",
        "simulation-service": "standard",
        "user-service": "standard",
        "notification-service": "standard",
        "document-service": "standard",
    },
}


def _resources(cpu: str, memory: str, memory_limit: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory_limit}}


DEFAULTS: dict[str, Any] = {
    "kubernetesVersion": "1.35",
    "controlPlaneLogTypes": ["api", "audit", "authenticator", "controllerManager", "scheduler"],
    "endpointPublicAccessCidrs": [],
    "tags": {"application": "financial-planning", "managed-by": "pulumi"},
    "vpcCidr": "10.0.0.0/16",
    "natGateways": "perAz",
    "controlPlaneLogRetentionDays": 365,
    "flowLogRetentionDays": 365,
    "nodeGroups": NODE_GROUPS,
    "application": {
        "namespace": "financial-planning",
        "logLevel": "info",
        "secretRefreshInterval": "15m",
    },
    "services": SERVICE_CATALOG,
    "addons": {
        "externalSecrets": {"replicas": 2, "resources": _resources("50m", "128Mi", "256Mi")},
        "metricsServer": {"replicas": 2, "resources": _resources("100m", "200Mi", "400Mi")},
        "clusterAutoscaler": {
            "replicas": 2,
            "resources": _resources("100m", "600Mi", "1Gi"),
            "scaleDownUnneededTime": "10m",
            "scaleDownDelayAfterAdd": "10m",
            "scaleDownUtilizationThreshold": 0.5,
        },
        "nvidiaDevicePlugin": {"resources": _resources("50m", "64Mi", "128Mi")},
        "verticalPodAutoscaler": {"replicas": 1, "resources": _resources("50m", "500Mi", "1Gi")},
        "prometheusAdapter": {
            "enabled": True,
            "replicas": 2,
            "resources": _resources("100m", "128Mi", "256Mi"),
        },
        "reloader": {"replicas": 2, "resources": _resources("10m", "128Mi", "256Mi")},
        # istiod twice (a PodDisruptionBudget keeps one through a node drain).
        "mesh": {
            "replicas": 2,
            "resources": _resources("250m", "512Mi", "1Gi"),
            "traffic": TRAFFIC,
            # One request in a hundred traced; the proxies and the services' SDKs send the
            # spans to Jaeger's collector (addons.jaeger, below; components/mesh/telemetry.py).
            "tracing": {"samplingPercent": 1.0},
            # Production's sidecars reach only what is registered: the mesh, the data tier,
            # the AWS APIs and these hosts (the mail and SMS providers are placeholders for
            # the ones the product signs up with).
            "outbound": {
                "registryOnly": True,
                "externalHosts": {
                    "banking-service": ["production.plaid.com"],
                    "ml-service": ["api.openai.com"],
                    "notification-service": ["api.sendgrid.com", "api.twilio.com"],
                },
            },
        },
        # The edge's controllers: two of each that elect a leader; external-dns runs once (it
        # has no leader election, and two would race on the same records).
        "loadBalancerController": {
            "replicas": 2,
            "resources": _resources("100m", "128Mi", "256Mi"),
        },
        "certManager": {"replicas": 2, "resources": _resources("50m", "128Mi", "256Mi")},
        "externalDns": {"replicas": 1, "resources": _resources("50m", "64Mi", "128Mi")},
        # One gateway replica per zone.
        "ingressGateway": {"replicas": 3, "resources": _resources("250m", "256Mi", "1Gi")},
        "rateLimiter": {"replicas": 2, "resources": _resources("50m", "64Mi", "128Mi")},
        # Every node's container logs, kept 30 days in the search domain.
        "logShipper": {"resources": _resources("50m", "64Mi", "256Mi"), "retentionDays": 30},
        # Two Jaeger replicas (collector and UI) in different zones; traces kept 7 days.
        "jaeger": {
            "replicas": 2,
            "resources": _resources("100m", "512Mi", "1Gi"),
            "retentionDays": 7,
        },
        # Two Prometheus replicas scrape alike (either can answer); 30 days on 100 GiB each.
        "monitoring": {
            "replicas": 2,
            "resources": _resources("500m", "2Gi", "4Gi"),
            "retentionDays": 30,
            "storageGib": 100,
            "alertmanagerReplicas": 2,
        },
    },
    # The seed's hosts: the API and the operator UIs, each `<name>.<domain>`; the domain,
    # its hosted zone and who may open the UIs are the stack file's.
    "edge": {
        "apiHost": "api",
        "operatorUis": ["grafana", "prometheus", "jaeger"],
        "acmeServer": "production",
        # 2,000 requests per client IP in five minutes (about 7 a second) before the web ACL
        # blocks it; the gateway's own limits sit behind this one.
        "waf": {"requestsPerIp": 2000, "windowSeconds": 300, "logRetentionDays": 365},
        # At the gateway, per minute: 300 per client IP (under the web ACL's 400 a minute)
        # and 120 per signed-in user, wherever they connect from.
        "rateLimits": {"requestsPerMinutePerIp": 300, "requestsPerMinutePerUser": 120},
        "shieldAdvanced": False,
    },
    "security": {"guardDuty": True, "cloudTrail": True, "trailRetentionDays": 2555},
    "retention": {"secretRecoveryWindowDays": 30, "documentVersionDays": 365},
    "data": DATA,
    "protect": True,
    # What `python -m bootstrap` creates with its default prefix (financial-planning).
    "iamPermissionsBoundary": "financial-planning-workload-boundary",
}
