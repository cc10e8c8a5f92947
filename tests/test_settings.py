"""Stack settings: defaults per environment, and one clear line for every bad value."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offline.engine import (
    PROJECT_DIR,
    PlatformMocks,
    RecordingMonitor,
    StackRun,
    root_stack_urn,
    run_stack,
    stack_config,
)
from stacks import SettingsError, settings_from_values
from stacks.environments import DEFAULTS, EKS_ENVIRONMENTS, ENVIRONMENTS
from stacks.merge import deep_merge
from tests.conftest import SEED_PORTS

BASE: dict[str, Any] = {
    "region": "eu-west-1",
    "availabilityZones": ["eu-west-1a", "eu-west-1b", "eu-west-1c"],
    "access": {"deployer": "arn:aws:iam::123456789012:role/deployer"},
    # Every stack names each service's release: there is no default image.
    "services": {name: {"imageTag": "2.0.0"} for name in SEED_PORTS},
    "data": {"search": {"administratorArn": "arn:aws:iam::123456789012:role/admin"}},
    # The domain and its zone are the account's; who may open the operator UIs too.
    "edge": {
        "domain": "example.com",
        "hostedZone": {"id": "Z0EXAMPLE", "name": "example.com"},
        "acmeEmail": "ops@financialplanning.com",
        "operatorAccess": {"allowedCidrs": ["52.94.0.0/28"]},
        "userTokens": {
            "issuer": "https://api.example.com",
        },
    },
}


def error_of(stack: str = "production", **values: Any) -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_values(stack, deep_merge(BASE, values))
    return str(caught.value)


def test_every_environment_has_a_stack_file_and_every_stack_file_an_environment() -> None:
    stack_files = {p.name.split(".")[1] for p in PROJECT_DIR.glob("Pulumi.*.yaml")}
    assert stack_files == set(ENVIRONMENTS)
    assert {"production", "staging"} <= set(ENVIRONMENTS)


def test_stack_files_state_only_what_differs_from_defaults() -> None:
    for stack in EKS_ENVIRONMENTS:
        config, _ = stack_config(stack)
        keys = {key.split(":", 1)[1] for key in config if key.startswith("financial-planning:")}
        secrets = {
            "openaiApiKey",
            "plaidClientId",
            "plaidSecret",
            "alertPagerdutyRoutingKey",
            "alertSlackWebhookUrl",
            "alertHeartbeatUrl",
            "securityFindingsPagerdutyKey",
            "operatorOidcClientSecret",
        }
        assert keys - secrets <= {
            "region",
            "availabilityZones",
            "endpointPublicAccessCidrs",
            "access",
            "services",
            "tags",
            # The search domain's master principal is account-specific: no default.
            "data",
            # So are the domain, its hosted zone and the operators' sign-in.
            "edge",
            # And the account, roles, state bucket and repository the workflows use.
            "delivery",
        }, keys


def test_environment_defaults_differ_where_production_needs_more() -> None:
    production = settings_from_values("production", BASE)
    staging = settings_from_values("staging", BASE)
    assert (production.nat_gateways, staging.nat_gateways) == ("perAz", "single")
    assert production.protect and not staging.protect
    for name, group in production.node_groups.items():
        assert getattr(staging.node_groups, name).max_size < group.max_size


def test_settings_are_immutable() -> None:
    settings = settings_from_values("production", BASE)
    with pytest.raises(Exception, match="frozen"):
        settings.protect = False  # type: ignore[misc]


def test_the_example_from_the_issue() -> None:
    message = error_of(nodeGroups={"gpu": {"minSize": 3, "maxSize": 2, "desiredSize": 3}})
    assert message == "nodeGroups.gpu.maxSize: 2 is below minSize 3"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"nodeGroups": {"gpu": {"maxSze": 2}}},
            "nodeGroups.gpu.maxSze: unknown setting (allowed: instanceTypes, minSize, maxSize,",
        ),
        ({"clusterVersion": "1.33"}, "clusterVersion: unknown setting (allowed: environment,"),
        (
            {"services": {"user-service": {"autoscaling": {"minReplicas": 5, "maxReplicas": 4}}}},
            "services.user-service.autoscaling.maxReplicas: 4 is below minReplicas 5",
        ),
        (
            {"services": {"user-service": {"autoscaling": {"minReplicas": 1}}}},
            "services.user-service.autoscaling.minReplicas: 1 is below production's 2: with one "
            "replica its PodDisruptionBudget lets a node drain take the service down",
        ),
        (
            {
                "services": {
                    "ml-service": {
                        "replicas": None,
                        "autoscaling": {"minReplicas": 1, "maxReplicas": 2},
                    }
                }
            },
            "services.ml-service.autoscaling: GPU services scale by hand (allowed: null, with "
            "replicas)",
        ),
        (
            {"services": {"user-service": {"replicas": 3}}},
            "services.user-service.replicas: set either replicas (scaled by hand) or autoscaling "
            "(an HPA), not both or neither",
        ),
        (
            {"services": {"user-service": {"verticalScaling": {"controlledResources": ["cpu"]}}}},
            "services.user-service.verticalScaling.controlledResources: ['cpu'] are what the HPA "
            "scales on; a VPA acting on them fights it",
        ),
        (
            {
                "services": {
                    "document-service": {
                        "resources": {"limits": {"memory": "16Gi"}},
                        "verticalScaling": {"maxAllowed": {"memory": "16Gi"}},
                    }
                }
            },
            # r5.large: 16 GiB less 7.5%, the kubelet's 11 x 29 + 255 Mi and 100Mi eviction
            # threshold, the node agents' 520Mi (GuardDuty's 256Mi among them) and the
            # sidecar's 128Mi (stacks/capacity.py, whose figures tests/foundation/
            # test_capacity.py holds to their sources).
            "services.document-service.verticalScaling.maxAllowed.memory: 16Gi does not fit "
            "r5.large, the first type of the memory group (at most 13833Mi beside the node "
            "agents and its sidecar)",
        ),
        (
            {"services": {"user-service": {"verticalScaling": {"maxAllowed": {"memory": "2Gi"}}}}},
            "services.user-service.verticalScaling.maxAllowed: memory 2Gi is above the limit 1Gi",
        ),
        (
            {"addons": {"clusterAutoscaler": {"imageTag": "v1.32.7"}}},
            "addons.clusterAutoscaler.imageTag: v1.32.7 is for Kubernetes 1.32, the cluster runs "
            "1.35 (allowed: v1.35.x)",
        ),
        (
            {"addons": {"clusterAutoscaler": {"enabled": False}}},
            "addons.clusterAutoscaler.enabled: node groups with minSize below maxSize need the "
            "cluster autoscaler",
        ),
        (
            {"nodeGroups": {"general": {"maxSize": 9}}},
            "nodeGroups.general.maxSize: cannot hold its workloads at their maximum (general: "
            "demand 32260m CPU, 115064Mi memory, 136 pods; capacity 9 x m5.xlarge at 3420m CPU, "
            "13642Mi memory, 50 pods each = 30780m CPU, 122778Mi memory, 450 pods; its pods "
            "pack into 11 nodes)",
        ),
        (
            {
                "addons": {"prometheusAdapter": {"enabled": False}},
                "services": {"financial-planning-api": {"autoscaling": {"requestsPerSecond": 50}}},
            },
            "services.financial-planning-api.autoscaling.requestsPerSecond: nothing serves it: "
            "enable addons.prometheusAdapter (with Prometheus)",
        ),
        (
            # The adapter runs only where an HPA reads what it serves.
            {"services": {"financial-planning-api": {"autoscaling": {"requestsPerSecond": None}}}},
            "addons.prometheusAdapter.enabled: no HPA scales on requestsPerSecond, the only "
            "metric it serves",
        ),
        (
            {"addons": {"prometheusAdapter": {"enabled": True}, "monitoring": {"enabled": False}}},
            "addons.prometheusAdapter.enabled: the adapter reads from Prometheus: enable "
            "monitoring, or give prometheusUrl",
        ),
        (
            {"addons": {"externalSecrets": {"enabled": False}}},
            "addons.externalSecrets.enabled: External Secrets delivers every secret the services "
            "read (allowed: true)",
        ),
        (
            {"addons": {"externalSecret": {"replicas": 2}}},
            "addons.externalSecret: unknown setting (allowed: externalSecrets, metricsServer, "
            "clusterAutoscaler, nvidiaDevicePlugin, verticalPodAutoscaler, prometheusAdapter, "
            "monitoring, mesh, reloader, loadBalancerController, certManager, externalDns, "
            "ingressGateway, rateLimiter, logShipper, jaeger)",
        ),
        (
            {"addons": {"externalSecrets": {"replicas": 0}}},
            "addons.externalSecrets.replicas: 0 is invalid: input should be greater than or equal",
        ),
        (
            {"addons": {"externalSecrets": {"resources": {"limits": {"memory": "64Mi"}}}}},
            "addons.externalSecrets.resources.limits: memory limit 64Mi is below the request 128Mi",
        ),
        (
            {"kubernetesVersion": "1.20"},
            "kubernetesVersion: '1.20' is not supported (allowed on ",
        ),
        ({"natGateways": "none"}, "natGateways: 'none' is invalid: input should be 'perAz' or"),
        ({"vpcCidr": "8.8.0.0/16"}, "vpcCidr: '8.8.0.0/16' must be a /16 to /20 inside"),
        (
            {"data": {"search": {"logRetentionDays": 42}}},
            "data.search.logRetentionDays: 42 is not a CloudWatch Logs retention (allowed: 1, 3,",
        ),
        (
            {"controlPlaneLogRetentionDays": 2},
            "controlPlaneLogRetentionDays: 2 is not a CloudWatch Logs retention (allowed: 1, 3,",
        ),
        (
            {"endpointPublicAccessCidrs": ["0.0.0.0/0"]},
            "endpointPublicAccessCidrs[0]: '0.0.0.0/0' is the internet, not an allow-list",
        ),
        (
            {"availabilityZones": ["eu-west-1a", "eu-west-1b", "us-east-1c"]},
            "availabilityZones: 'us-east-1c' is not a zone of region 'eu-west-1'",
        ),
        (
            {"access": {"deployer": None}},
            "access.deployer: is empty (null): input should be a valid string",
        ),
        (
            {"access": {"deployer": "admin"}},
            "access.deployer: 'admin' is not an IAM role or user ARN: give arn:aws:iam::",
        ),
        (
            {
                "access": {
                    "deployer": "arn:aws:iam::123456789012:role/deployer",
                    "auditors": ["arn:aws:iam::123456789012:role/deployer"],
                }
            },
            "access.auditors[0]: arn:aws:iam::123456789012:role/deployer is already "
            "access.deployer (EKS allows one access entry per principal)",
        ),
        (
            {
                "access": {
                    "deployer": "arn:aws:iam::123456789012:role/deployer",
                    "developersMayEdit": True,
                }
            },
            "access.developersMayEdit: production developers read only: no Secrets, no exec",
        ),
        (
            {"nodeGroups": {"general": {"instanceTypes": ["m5.2xlarge", "m5.large"]}}},
            "nodeGroups.general.instanceTypes: ['m5.2xlarge', 'm5.large'] must be ordered "
            "smallest first",
        ),
        (
            {"nodeGroups": {"compute": {"instanceTypes": ["c5.huge"]}}},
            "nodeGroups.compute.instanceTypes: 'c5.huge' is not a known instance type",
        ),
        (
            {"nodeGroups": {"gpu": {"amiType": "AL2023_x86_64_STANDARD"}}},
            "nodeGroups.gpu.amiType: 'AL2023_x86_64_STANDARD' has no NVIDIA driver",
        ),
        (
            {
                "nodeGroups": {
                    "memory": {"instanceTypes": ["g4dn.xlarge"], "amiType": "AL2023_x86_64_NVIDIA"}
                }
            },
            "nodeGroups.memory: only the gpu group may run GPU instances",
        ),
        (
            {"nodeGroups": {"gpu": {"taints": [{"key": "nvidia.com/gpu", "effect": "Never"}]}}},
            "nodeGroups.gpu.taints[0].effect: 'Never' is invalid: input should be 'NO_SCHEDULE',",
        ),
        (
            {"nodeGroups": {"general": {"desiredSize": 40}}},
            "nodeGroups.general.desiredSize: 40 is outside minSize..maxSize (2..20)",
        ),
        (
            {"nodeGroups": {"general": {"labels": {"workload-class": "x"}}}},
            "nodeGroups.general.labels: 'workload-class' is set by the program",
        ),
        (
            {"protect": "sometimes"},
            "protect: 'sometimes' is not a boolean (allowed: true or false)",
        ),
        (
            {"addons": {"monitoring": {"alertmanagerReplicas": 1}}},
            "addons.monitoring.alertmanagerReplicas: 1 is below production's 2 (one node's loss "
            "would blind it)",
        ),
        (
            {
                "addons": {
                    "monitoring": {"enabled": False},
                    "prometheusAdapter": {"enabled": False},
                },
                "services": {
                    "financial-planning-api": {"autoscaling": {"requestsPerSecond": None}}
                },
            },
            "addons.monitoring.enabled: production is monitored (allowed: true)",
        ),
        (
            # A name, not an ARN: the program adds the account.
            {"iamPermissionsBoundary": "arn:aws:iam::123456789012:policy/b"},
            "iamPermissionsBoundary: 'arn:aws:iam::123456789012:policy/b' is invalid",
        ),
        (
            {"environment": "perf"},
            "environment: 'perf' has no defaults (allowed: development, production",
        ),
        (
            {
                "services": {
                    "simulation-service": {
                        "resources": {"requests": {"cpu": "4"}, "limits": {"cpu": "4"}}
                    }
                }
            },
            "services.simulation-service.resources.requests.cpu: 4 does not fit c5.xlarge, the "
            "first type of the compute group (at most 3370m beside the node agents and its "
            "sidecar)",
        ),
        (
            {
                "services": {
                    "document-service": {
                        "resources": {"requests": {"memory": "15Gi"}, "limits": {"memory": "16Gi"}}
                    }
                }
            },
            "services.document-service.resources.requests.memory: 15Gi does not fit r5.large",
        ),
        (
            # One GPU per pod, five GPU nodes at most (each pod has a cache volume of its own).
            {"services": {"ml-service": {"replicas": 6}}},
            "nodeGroups.gpu.maxSize: cannot hold its workloads at their maximum (gpu: demand "
            "12300m CPU, 49920Mi memory, 6 GPU, 6 pods;",
        ),
        (
            {"services": {"user-service": {"imageTag": "latest"}}},
            "services.user-service.imageTag: 'latest' floats",
        ),
        (
            {"services": {"user-service": {"gpus": 1}}},
            "services.user-service.gpus: GPUs are requested exactly by the services of workload",
        ),
        (
            {"services": {"user-service": {"secretEnv": {"DB": "vault/password"}}}},
            "services.user-service.secretEnv.DB: 'vault/password' is not delivered",
        ),
        (
            {"services": {"user-service": {"secretEnv": {"DB": "password"}}}},
            "services.user-service.secretEnv.DB: 'password' is invalid: string should match",
        ),
        (
            {"services": {"user-service": {"secretEnv": {"DB": "api-credentials/db-password"}}}},
            "services.user-service.secretEnv.DB: 'api-credentials/db-password' is not delivered "
            "(allowed: api-credentials/openai-api-key",
        ),
        (
            {"services": {"user-service": {"resources": {"limits": {"cpu": "100m"}}}}},
            "services.user-service.resources.limits: cpu limit 100m is below the request 250m",
        ),
        (
            {"services": {"payments-service": {"port": 9000}}},
            "services: unknown key 'payments-service' (allowed: 'financial-planning-api', ",
        ),
        (
            {"services": {"user-service": {"port": 80}}},
            "services.user-service.port: 80 is invalid: input should be greater than or equal",
        ),
        (
            {"data": {"search": {"engineVersion": "OpenSearch_2.17"}}},
            "data.search.engineVersion: OpenSearch_2.17 is older than OpenSearch_2.19, which the "
            "log shipper's index is built for (allowed: OpenSearch_2.19 or later, or "
            "addons.logShipper.enabled false)",
        ),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_key(
    values: dict[str, Any], expected: str
) -> None:
    message = error_of(**values)
    assert message.startswith(expected), message
    assert "\n" not in message


@pytest.mark.parametrize(
    "stack", ["Prod", "longer-than-12", "9lives", "a_b", "qa-", "qa--blue", "qa-blue-", "-qa"]
)
def test_stack_names_must_fit_the_names_derived_from_them(stack: str) -> None:
    with pytest.raises(SettingsError, match=rf"^stack: '{stack}' is not a usable stack name"):
        settings_from_values(stack, {**BASE, "environment": "staging"})


@pytest.mark.parametrize("stack", ["qa", "qa-blue", "q1-2-3", "twelve-chars"])
def test_stack_names_with_single_inner_hyphens_are_fine(stack: str) -> None:
    assert settings_from_values(stack, {**BASE, "environment": "staging"}).environment == "staging"


@given(st.from_regex(r"[a-z][a-z0-9-]{0,11}", fullmatch=True))
def test_no_accepted_stack_name_makes_an_identifier_aws_refuses(stack: str) -> None:
    try:
        settings_from_values(stack, {**BASE, "environment": "staging"})
    except SettingsError:
        return
    # RDS and ElastiCache identifiers: no "--", no trailing "-" (their own validators).
    for identifier in (f"financial-planning-{stack}-postgres", f"financial-planning-{stack}-redis"):
        assert "--" not in identifier and not identifier.endswith("-")
    assert "--" not in stack and not stack.endswith("-")


def test_every_problem_gets_its_own_line() -> None:
    message = error_of(natGateways="none", foo=1)
    assert sorted(message.splitlines()) == [
        "foo: unknown setting (allowed: environment, region, availabilityZones, vpcCidr, "
        "natGateways, kubernetesVersion, endpointPublicAccessCidrs, webhooksFromPrivateSubnets, "
        "controlPlaneLogTypes, controlPlaneLogRetentionDays, flowLogRetentionDays, access, "
        "nodeGroups, "
        "application, services, addons, security, retention, data, edge, protect, "
        "iamPermissionsBoundary, delivery, tags, monthlyBudgetUsd)",
        "natGateways: 'none' is invalid: input should be 'perAz' or 'single'",
    ]


sizes = st.integers(min_value=-2, max_value=40)


@given(minimum=sizes, maximum=sizes, desired=sizes)
def test_any_size_triple_is_accepted_exactly_when_it_is_consistent(
    minimum: int, maximum: int, desired: int
) -> None:
    values = {
        **BASE,
        "nodeGroups": {"gpu": {"minSize": minimum, "maxSize": maximum, "desiredSize": desired}},
    }
    # And with one of three zones lost, the nodes left hold ml-service's two production
    # replicas (scaled by hand: counted at its replicas, stacks/capacity.py), one GPU node
    # each: three nodes at most leave two.
    consistent = 0 <= minimum <= desired <= maximum and maximum >= 3
    try:
        group = settings_from_values("production", values).node_groups.gpu
    except SettingsError as error:
        assert not consistent, str(error)
        assert str(error).startswith("nodeGroups.gpu."), str(error)
    else:
        assert consistent
        assert (group.min_size, group.max_size, group.desired_size) == (minimum, maximum, desired)


def test_a_bad_stack_file_value_stops_the_program_before_any_resource(
    production: StackRun,
) -> None:
    config, secret_keys = stack_config("production")
    config["financial-planning:nodeGroups"] = {"gpu": {"minSize": 3, "maxSize": 2}}
    monitor = RecordingMonitor(PlatformMocks())
    with pytest.raises(SettingsError, match=r"^nodeGroups.gpu.maxSize: 2 is below minSize 3$"):
        run_stack("production", config=config, secret_keys=secret_keys, monitor=monitor)
    assert monitor.recorded == []
    # The empty list means something: this monitor served the refused run (the SDK registered
    # the root stack and its outputs through it before the program ran; the root stack is
    # never recorded as a resource), and the recording monitor records a good run of the same
    # stack (the shared render is one).
    assert list(monitor.outputs) == [root_stack_urn("production", "financial-planning")]
    assert len(production.resources) > 50


def test_defaults_hold_the_seed_sizes() -> None:
    groups = DEFAULTS["production"]["nodeGroups"]
    assert {name: (g["minSize"], g["maxSize"]) for name, g in groups.items()} == {
        "general": (2, 20),
        "compute": (3, 30),
        "memory": (1, 10),
        "gpu": (0, 5),
    }


def test_an_older_search_engine_is_fine_without_the_log_shipper() -> None:
    """Only the log shipper's index needs OpenSearch 2.19 (its flat_object handling is derived
    from 2.19's mapper); the refusal is among test_bad_values_fail_with_one_line_naming_the_key's
    cases."""
    settings = settings_from_values(
        "production",
        deep_merge(
            BASE,
            {
                "data": {"search": {"engineVersion": "OpenSearch_2.17"}},
                "addons": {"logShipper": {"enabled": False}},
            },
        ),
    )
    assert settings.data.search.engine_version == "OpenSearch_2.17"
