"""Development: the application on an existing local cluster (kind, minikube, Docker Desktop).

The seed's "minimal resources, disabled monitoring, local-friendly": one replica per service,
small requests, the data tier inside the cluster, no AWS, no autoscaling, mesh or monitoring.
Deployed onto the cluster of the stack file's `kubeContext` (see docs/development.md).
"""

from typing import Any

from stacks.catalog import SERVICE_CATALOG
from stacks.environments.production import DATA as PRODUCTION_DATA

# Read by stacks.environments: this environment's stacks use stacks.local_settings.
TARGET = "kubeconfig"

# Every service: one replica, no HPA, small enough for a laptop (8 services in about 1 CPU and
# 1.5 GiB of requests). Its VPA settings stay (unused: no VPA here) but are shrunk to fit.
_SMALL: dict[str, Any] = {
    # The tag local builds are pushed under (docs/development.md).
    "imageTag": "dev",
    "replicas": 1,
    "autoscaling": None,
    "resources": {
        "requests": {"cpu": "100m", "memory": "192Mi"},
        "limits": {"cpu": "1", "memory": "768Mi"},
    },
    "verticalScaling": {
        "updateMode": "Off",
        "minAllowed": {"cpu": "50m", "memory": "128Mi"},
        "maxAllowed": {"cpu": "1", "memory": "768Mi"},
    },
}
SERVICES: dict[str, Any] = {name: dict(_SMALL) for name in SERVICE_CATALOG}
# No GPU nodes: ml-service runs its models on the CPU, with a small model volume.
SERVICES["ml-service"] = {
    **_SMALL,
    "workloadClass": "general",
    "gpus": 0,
    "cacheVolume": {"mountPath": "/models", "sizeGib": 5},
}
# No S3: document-service runs without its bucket (DOCUMENTS_BUCKET is unset).
SERVICES["document-service"] = {**_SMALL, "documentsBucket": False}

DEFAULTS: dict[str, Any] = {
    # The Kubernetes of `make dev-cluster`'s node image (devloop/kind-cluster.yaml): the oldest
    # minor kind v0.33.0 publishes an image for, one behind production's.
    "kubernetesVersion": "1.34",
    # kind's local registry (docs/development.md).
    "imageRegistry": "localhost:5001/financial-planning",
    "application": {"namespace": "financial-planning-dev", "logLevel": "debug"},
    "services": {name: {**SERVICE_CATALOG[name], **SERVICES[name]} for name in SERVICE_CATALOG},
    "data": {
        "database": {
            # Production's PostgreSQL minor, so that what works here works there.
            "engineVersion": PRODUCTION_DATA["database"]["engineVersion"],
            "instances": 1,
            "storageGib": 5,
        },
        "cache": {"storageGib": 1},
        "search": {"storageGib": 5, "heapMib": 512},
    },
}
