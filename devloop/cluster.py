"""`make dev-cluster`: the kind cluster the development stack names, with a local registry.

The steps of kind's "Local Registry" guide (kind.sigs.k8s.io/docs/user/local-registry/, the
script site/static/examples/kind-with-registry.sh of kubernetes-sigs/kind v0.32.0, unchanged
up to v0.33.0-alpha), for a named cluster and idempotent:

1. a `registry:3` container `kind-registry`, published on 127.0.0.1:<port> only;
2. the cluster, from devloop/kind-cluster.yaml (its `name` gives the context `kind-<name>`);
3. on each node, `/etc/containerd/certs.d/localhost:<port>/hosts.toml` sending pulls of
   `localhost:<port>/...` to `http://kind-registry:5000` (localhost inside a node is the node);
4. the registry joined to the `kind` Docker network;
5. the `local-registry-hosting` ConfigMap in `kube-public` (KEP-1755), documenting the registry.

Where the guide relies on the default cluster name (`kind get nodes`) and the current kubectl
context, these steps name the cluster and the context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devloop.runner import DevLoopError, Runner

KIND_CONFIG = Path(__file__).resolve().parent / "kind-cluster.yaml"
# The kind release whose node image the config pins; a node image is supported with the kind
# release that built it (kind docs, "Node Image"; each release's notes list its images).
KIND_RELEASE = (0, 33)
# The guide's names: the registry container, its image, and the port it listens on inside.
REGISTRY_CONTAINER = "kind-registry"
REGISTRY_IMAGE = "registry:3"
REGISTRY_CONTAINER_PORT = 5000
KIND_NETWORK = "kind"
CERTS_DIR = "/etc/containerd/certs.d"
GUIDE = "https://kind.sigs.k8s.io/docs/user/local-registry/"


@dataclass(frozen=True)
class LocalCluster:
    name: str
    # The host port of the registry: imageRegistry is localhost:<port>/...
    registry_port: int

    @property
    def context(self) -> str:
        # kind's kubeconfig context for a cluster: kind-<name>.
        return f"kind-{self.name}"

    @property
    def registry_host(self) -> str:
        return f"localhost:{self.registry_port}"


def kind_config(path: Path = KIND_CONFIG) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(path.read_text())
    return config


def local_cluster(kube_context: str, image_registry: str, path: Path = KIND_CONFIG) -> LocalCluster:
    """The cluster and registry the stack's settings name, if `make dev-cluster` can make them."""
    name = str(kind_config(path)["name"])
    if kube_context != f"kind-{name}":
        raise DevLoopError(
            f"kubeContext: {kube_context!r} is not the cluster make dev-cluster creates "
            f"(kind-{name}, from {path.name}): set it, or create {kube_context!r} yourself"
        )
    found = re.fullmatch(r"localhost:([0-9]{1,5})(/.*)?", image_registry)
    if found is None:
        raise DevLoopError(
            f"imageRegistry: {image_registry!r} is not on localhost:<port>, where make "
            "dev-cluster runs kind's local registry (default localhost:5001/financial-planning)"
        )
    return LocalCluster(name=name, registry_port=int(found.group(1)))


def check_kind_version(runner: Runner) -> None:
    output = runner.query("kind", "version")
    found = re.search(r"\bv([0-9]+)\.([0-9]+)\.", output or "")
    if found is None:
        return  # cannot tell (a dry run, or a build without a version): kind will say
    version = (int(found.group(1)), int(found.group(2)))
    release = ".".join(map(str, KIND_RELEASE))
    if version < KIND_RELEASE:
        raise DevLoopError(
            f"kind v{version[0]}.{version[1]} is older than the v{release} that built the node "
            f"image of {KIND_CONFIG.name}: upgrade kind"
        )
    if version > KIND_RELEASE:
        print(
            f"note: kind v{version[0]}.{version[1]} is newer than the v{release} that built "
            f"the node image of {KIND_CONFIG.name}; kind supports older images best effort"
        )


def hosts_toml() -> str:
    # containerd's hosts.toml: pulls for the directory's host go to this endpoint instead.
    return f'[host."http://{REGISTRY_CONTAINER}:{REGISTRY_CONTAINER_PORT}"]\n'


def registry_hosting(cluster: LocalCluster) -> str:
    return (
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: local-registry-hosting\n"
        "  namespace: kube-public\n"
        "data:\n"
        "  localRegistryHosting.v1: |\n"
        f'    host: "{cluster.registry_host}"\n'
        f'    help: "{GUIDE}"\n'
    )


def create(runner: Runner, cluster: LocalCluster, config: Path = KIND_CONFIG) -> None:
    """Create what is missing of the registry and the cluster; leave what exists."""
    check_kind_version(runner)
    # 1. The registry container: started when stopped, created when absent.
    running = runner.query("docker", "inspect", "-f", "{{.State.Running}}", REGISTRY_CONTAINER)
    if running is None:
        runner.run(
            "docker",
            "run",
            "-d",
            "--restart=always",
            "-p",
            f"127.0.0.1:{cluster.registry_port}:{REGISTRY_CONTAINER_PORT}",
            "--network",
            "bridge",
            "--name",
            REGISTRY_CONTAINER,
            REGISTRY_IMAGE,
        )
    elif running.strip() != "true":
        runner.run("docker", "start", REGISTRY_CONTAINER)
    # 2. The cluster.
    clusters = (runner.query("kind", "get", "clusters") or "").split()
    if cluster.name not in clusters:
        runner.run("kind", "create", "cluster", "--config", str(config))
    # 3. Every node pulls localhost:<port>/... from the registry container.
    registry_dir = f"{CERTS_DIR}/{cluster.registry_host}"
    nodes = (runner.query("kind", "get", "nodes", "--name", cluster.name) or "").split()
    if not nodes:
        # A dry run: kind names a one-node cluster's node <name>-control-plane.
        nodes = [f"{cluster.name}-control-plane"]
    for node in nodes:
        runner.run("docker", "exec", node, "mkdir", "-p", registry_dir)
        runner.run(
            "docker",
            "exec",
            "-i",
            node,
            "cp",
            "/dev/stdin",
            f"{registry_dir}/hosts.toml",
            stdin=hosts_toml(),
        )
    # 4. The registry on the nodes' network.
    network = runner.query(
        "docker",
        "inspect",
        "-f",
        f"{{{{json .NetworkSettings.Networks.{KIND_NETWORK}}}}}",
        REGISTRY_CONTAINER,
    )
    if network is None or network.strip() == "null":
        runner.run("docker", "network", "connect", KIND_NETWORK, REGISTRY_CONTAINER)
    # 5. Where the cluster's registry is, for tools that look (KEP-1755).
    runner.run(
        "kubectl", "--context", cluster.context, "apply", "-f", "-", stdin=registry_hosting(cluster)
    )


def delete(runner: Runner, cluster: LocalCluster) -> None:
    """Delete the cluster; the registry and its images stay for the next one."""
    runner.run("kind", "delete", "cluster", "--name", cluster.name)
