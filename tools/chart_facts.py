"""Facts about the pinned Helm charts, derived from each chart's source with a real `helm template`.

Run by hand, from the repository root, with the chart sources at hand (never in CI):

    .venv/bin/python -m tools.chart_facts --helm /path/to/helm [--chart NAME ...]

For every Helm release the program creates in every stack (found by running the program under
the offline engine), the script takes the chart's source at the pinned version from a local bare
clone of its public repository (`<mirror>/<owner>+<name>/repo`, e.g. made with
`git clone --bare https://github.com/<owner>/<name> <mirror>/<owner>+<name>/repo`), applies what
the chart's own release process applies (named per chart below), adds its subcharts, and renders
it with the stack's values. Then, for every value path the program sets, it renders again with
that value changed, and again with it removed: the chart reads the value when the output changes
(a template failure counts as a change). Everything else is recorded from the renders: kinds,
images, each workload's placement, security contexts and requests, and the CRDs' served
versions. The facts go to tests/chart_facts/<chart>-<version>.json; the chart sources never enter
the repository. The tests read only those files (tests/test_chart_facts.py).

Renders that differ between two runs with the same values (generated certificates, random
names) are noise, and what changes only there does not count. The istiod chart dumps its values
twice: the `values` ConfigMap is documented as having no effect, and the sidecar injector's
`values` is read by istiod's injection templates (in the same ConfigMap's `config`) when it
injects a pod, so a path that changes only that dump counts as read when those templates name it.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from offline.pod_security import Level, violations

FACTS_DIR = Path(__file__).resolve().parent.parent / "tests" / "chart_facts"
STACKS = ("production", "staging", "development")
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
REFRESH = ".venv/bin/python -m tools.chart_facts --helm <helm> --chart {chart}"


@dataclass(frozen=True)
class Source:
    """A chart directory in a public GitHub repository at a tag (or commit)."""

    repo: str
    ref: str
    path: str
    # Why this source differs from what the chart pins, where it does.
    note: str = ""


@dataclass(frozen=True)
class ChartSource:
    chart: Source
    # Every dependency in Chart.yaml, enabled or not (helm refuses a chart with one missing).
    subcharts: tuple[Source, ...] = ()
    # What the chart's release process does to the source before packaging it.
    prepare: Callable[[Path, Path, str], None] | None = None


def istio_release(chart_dir: Path, _: Path, version: str) -> None:
    """istio/release-builder `pkg/build/helm.go` (sanitizeChart): in Chart.yaml and values.yaml
    the placeholder version 1.0.0 becomes the release, the testing hub becomes docker.io/istio
    (release/build.sh's DOCKER_HUB) and `tag: latest` the release."""
    for name in ("Chart.yaml", "values.yaml"):
        for path in chart_dir.rglob(name):
            text = path.read_text()
            for key in ("version", "appVersion"):
                text = text.replace(f"{key}: 1.0.0", f"{key}: {version}")
            for hub in (
                "gcr.io/istio-testing",
                "gcr.io/istio-release",
                "registry.istio.io/testing",
            ):
                text = text.replace(f"hub: {hub}", "hub: docker.io/istio")
            text = re.sub(
                r"tag: .*-latest-daily|tag: latest|tag: 1\..-dev", f"tag: {version}", text
            )
            text = text.replace('"tag": "latest"', f'"tag": "{version}"')
            path.write_text(text)


def cert_manager_release(chart_dir: Path, _: Path, version: str) -> None:
    """cert-manager `make/manifests.mk`: Chart.yaml is Chart.template.yaml with version and
    appVersion set to the release (`helm package --version --app-version`)."""
    chart = yaml.safe_load((chart_dir / "Chart.template.yaml").read_text())
    chart["version"] = chart["appVersion"] = version
    chart["annotations"]["artifacthub.io/prerelease"] = "false"
    (chart_dir / "Chart.yaml").write_text(yaml.safe_dump(chart))


def external_secrets_release(chart_dir: Path, checkout: Path, _: str) -> None:
    """external-secrets `hack/helm.generate.sh` (run by `make helm.generate` before packaging):
    deploy/crds/bundle.yaml is split into templates/crds/<singular>.yaml, each under
    `installCRDs` (and `crds.create<Kind>` for the cluster-scoped kinds and PushSecret), the
    conversion webhook's service renamed to the chart's, `crds.annotations` added. The
    v1alpha1 wrapping it does for ExternalSecret and SecretStore is a no-op at 0.19.2 (neither
    CRD has a v1alpha1 version any more)."""
    bundle = (checkout / "deploy/crds/bundle.yaml").read_text()
    target = chart_dir / "templates/crds"
    for document in re.split(r"^---\s*$", bundle, flags=re.MULTILINE):
        crd = yaml.safe_load(document)
        if not crd:
            continue
        kind = crd["spec"]["names"]["kind"]
        if any(v["name"] == "v1alpha1" for v in crd["spec"]["versions"]) and kind in (
            "ExternalSecret",
            "SecretStore",
        ):
            raise SystemExit(f"external-secrets: {kind} has v1alpha1: port the generator's wrap")
        flag = f"create{kind}"
        if "Cluster" in flag or "PushSecret" in flag:
            guard = f"{{{{- if and (.Values.installCRDs) (.Values.crds.{flag}) }}}}"
        else:
            guard = "{{- if .Values.installCRDs }}"
        body = document.strip("\n")
        body = body.replace(
            "name: kubernetes", 'name: {{ include "external-secrets.fullname" . }}-webhook'
        )
        body = body.replace("namespace: default", "namespace: {{ .Release.Namespace | quote }}")
        lines = body.splitlines()
        for index, line in enumerate(lines):
            if "annotations" in line:
                lines[index + 1 : index + 1] = [
                    "    {{- with .Values.crds.annotations }}",
                    "    {{- toYaml . | nindent 4}}",
                    "    {{- end }}",
                    "    {{- if and .Values.crds.conversion.enabled "
                    ".Values.webhook.certManager.enabled "
                    ".Values.webhook.certManager.addInjectorAnnotations }}",
                    "    cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/"
                    '{{ include "external-secrets.fullname" . }}-webhook',
                    "    {{- end }}",
                ]
                break
        text = "\n".join([guard, *lines, "{{- end }}", ""])
        (target / f"{crd['spec']['names']['singular']}.yaml").write_text(text)


ISTIO = "istio/istio"
PROMETHEUS_COMMUNITY = "prometheus-community/helm-charts"
SOURCES: dict[tuple[str, str], ChartSource] = {
    ("aws-load-balancer-controller", "3.5.0"): ChartSource(
        # aws/eks-charts (the chart repository the program names) tags releases of the whole
        # repository only: this is the commit that published chart 3.5.0.
        Source(
            "aws/eks-charts",
            "5239609242f3430be50fb0b714a24d3ef2b47983",
            "stable/aws-load-balancer-controller",
        )
    ),
    ("cert-manager", "v1.20.3"): ChartSource(
        Source("cert-manager/cert-manager", "v1.20.3", "deploy/charts/cert-manager"),
        prepare=cert_manager_release,
    ),
    ("cluster-autoscaler", "9.53.0"): ChartSource(
        Source(
            "kubernetes/autoscaler",
            "cluster-autoscaler-chart-9.53.0",
            "cluster-autoscaler/charts/cluster-autoscaler",
        )
    ),
    ("external-dns", "1.21.1"): ChartSource(
        Source(
            "kubernetes-sigs/external-dns", "external-dns-helm-chart-1.21.1", "charts/external-dns"
        )
    ),
    ("external-secrets", "0.19.2"): ChartSource(
        Source(
            "external-secrets/external-secrets",
            "helm-chart-0.19.2",
            "deploy/charts/external-secrets",
        ),
        subcharts=(
            Source(
                "external-secrets/bitwarden-sdk-server",
                "v0.5.0",
                "deploy/charts/bitwarden-sdk-server",
                note="disabled (bitwarden-sdk-server.enabled: false); present for helm's check",
            ),
        ),
        prepare=external_secrets_release,
    ),
    ("fluent-bit", "0.58.1"): ChartSource(
        Source("fluent/helm-charts", "fluent-bit-0.58.1", "charts/fluent-bit")
    ),
    ("base", "1.30.3"): ChartSource(
        Source(ISTIO, "1.30.3", "manifests/charts/base"), prepare=istio_release
    ),
    ("cni", "1.30.3"): ChartSource(
        Source(ISTIO, "1.30.3", "manifests/charts/istio-cni"), prepare=istio_release
    ),
    ("gateway", "1.30.3"): ChartSource(
        Source(ISTIO, "1.30.3", "manifests/charts/gateway"), prepare=istio_release
    ),
    ("istiod", "1.30.3"): ChartSource(
        Source(ISTIO, "1.30.3", "manifests/charts/istio-control/istio-discovery"),
        prepare=istio_release,
    ),
    ("jaeger", "4.11.1"): ChartSource(
        Source("jaegertracing/helm-charts", "jaeger-4.11.1", "charts/jaeger"),
        subcharts=(
            Source(
                "bitnami/charts",
                "common/2.31.10",
                "bitnami/common",
                note=(
                    "Chart.lock pins common 2.34.0, which bitnami/charts never published in "
                    "git (its newest is 2.31.10); the chart uses only common.images.image, "
                    "common.images.renderPullSecrets and common.capabilities.cronjob.apiVersion"
                ),
            ),
        ),
    ),
    ("kube-prometheus-stack", "88.5.3"): ChartSource(
        Source(
            PROMETHEUS_COMMUNITY, "kube-prometheus-stack-88.5.3", "charts/kube-prometheus-stack"
        ),
        subcharts=(
            Source(PROMETHEUS_COMMUNITY, "kube-state-metrics-8.4.0", "charts/kube-state-metrics"),
            Source(
                PROMETHEUS_COMMUNITY,
                "prometheus-node-exporter-4.56.1",
                "charts/prometheus-node-exporter",
                note="disabled (nodeExporter.enabled: false): the program installs its own",
            ),
            Source("grafana-community/helm-charts", "grafana-12.11.1", "charts/grafana"),
            Source(
                PROMETHEUS_COMMUNITY,
                "prometheus-windows-exporter-0.12.8",
                "charts/prometheus-windows-exporter",
                note="0.12.*: the newest 0.12 tag before the chart's; disabled (windowsMonitoring)",
            ),
        ),
    ),
    ("metrics-server", "3.13.0"): ChartSource(
        Source(
            "kubernetes-sigs/metrics-server",
            "metrics-server-helm-chart-3.13.0",
            "charts/metrics-server",
        )
    ),
    # Its node-feature-discovery subchart is vendored in the chart's charts/ directory.
    ("nvidia-device-plugin", "0.17.4"): ChartSource(
        Source("NVIDIA/k8s-device-plugin", "v0.17.4", "deployments/helm/nvidia-device-plugin")
    ),
    ("prometheus-adapter", "5.3.0"): ChartSource(
        Source(PROMETHEUS_COMMUNITY, "prometheus-adapter-5.3.0", "charts/prometheus-adapter")
    ),
    ("prometheus-node-exporter", "4.56.1"): ChartSource(
        Source(
            PROMETHEUS_COMMUNITY,
            "prometheus-node-exporter-4.56.1",
            "charts/prometheus-node-exporter",
        )
    ),
    ("reloader", "2.2.16"): ChartSource(
        Source("stakater/Reloader", "chart-v2.2.16", "deployments/kubernetes/chart/reloader")
    ),
    ("vertical-pod-autoscaler", "0.11.0"): ChartSource(
        Source(
            "kubernetes/autoscaler",
            "vertical-pod-autoscaler-chart-0.11.0",
            "vertical-pod-autoscaler/charts/vertical-pod-autoscaler",
        )
    ),
    ("cloudnative-pg", "0.29.0"): ChartSource(
        Source("cloudnative-pg/charts", "cloudnative-pg-v0.29.0", "charts/cloudnative-pg"),
        subcharts=(
            Source(
                "cloudnative-pg/grafana-dashboards",
                "cluster-v0.0.5",
                "charts/cluster",
                note="alias monitoring; disabled (monitoring.grafanaDashboard.create: false)",
            ),
        ),
    ),
    ("opensearch", "3.6.0"): ChartSource(
        Source("opensearch-project/helm-charts", "opensearch-3.6.0", "charts/opensearch")
    ),
    ("valkey", "0.11.0"): ChartSource(Source("valkey-io/valkey-helm", "valkey-0.11.0", "valkey")),
}

# The custom resource APIs the stack's cluster serves, by the release that installs their CRDs
# (charts test `.Capabilities.APIVersions` before creating a ServiceMonitor, a Certificate, ...).
CRD_APIS = {
    "kube-prometheus-stack": (
        "monitoring.coreos.com/v1",
        "monitoring.coreos.com/v1/ServiceMonitor",
        "monitoring.coreos.com/v1/PodMonitor",
        "monitoring.coreos.com/v1/PrometheusRule",
        "monitoring.coreos.com/v1alpha1",
    ),
    "cert-manager": ("cert-manager.io/v1", "acme.cert-manager.io/v1"),
    "vertical-pod-autoscaler": (
        "autoscaling.k8s.io/v1",
        "autoscaling.k8s.io/v1/VerticalPodAutoscaler",
    ),
    "istio-base": ("networking.istio.io/v1", "security.istio.io/v1", "telemetry.istio.io/v1"),
    "external-secrets": ("external-secrets.io/v1",),
    "cloudnative-pg": ("postgresql.cnpg.io/v1",),
}
# Image repositories the program pins a tag of, and where each release is tagged upstream.
IMAGE_RELEASES = {
    "registry.k8s.io/autoscaling/cluster-autoscaler": (
        "kubernetes/autoscaler",
        "cluster-autoscaler-{}",
    ),
    "jaegertracing/jaeger": ("jaegertracing/jaeger", "v{}"),
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
DELETE = object()


@dataclass
class Release:
    stack: str
    name: str
    chart: str
    version: str
    repository: str
    namespace: str
    values: dict[str, Any]
    kube_version: str
    api_versions: tuple[str, ...]
    # The Pod Security level each namespace of the stack enforces.
    pod_security: dict[str, str] = field(default_factory=dict)


def values_digest(values: Any) -> str:
    """What the facts of one release were rendered from (the tests compare it)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def find_releases(stacks: Sequence[str]) -> list[Release]:
    from offline.engine import run_stack
    from offline.synth import kubernetes_objects

    found = []
    for stack in stacks:
        run = run_stack(stack)
        settings = run.namespace["settings"]
        releases = run.of_type(HELM_RELEASE)
        names = {r.name for r in releases}
        apis = tuple(sorted({api for name in names for api in CRD_APIS.get(name, ())}))
        levels = {
            o["metadata"]["name"]: o["metadata"]
            .get("labels", {})
            .get("pod-security.kubernetes.io/enforce", "privileged")
            for o in kubernetes_objects(run)
            if o["kind"] == "Namespace"
        }
        for r in releases:
            found.append(
                Release(
                    stack=stack,
                    name=r.name,
                    chart=r.inputs["chart"],
                    version=r.inputs["version"],
                    repository=r.inputs["repositoryOpts"]["repo"],
                    namespace=r.inputs["namespace"],
                    values=r.inputs.get("values", {}),
                    kube_version=settings.kubernetes_version,
                    api_versions=apis,
                    pod_security=levels,
                )
            )
    return found


def git(mirror: Path, repo: str, *args: str) -> str:
    git_dir = mirror / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        raise SystemExit(
            f"no clone of {repo} at {git_dir}: git clone --bare https://github.com/{repo} {git_dir}"
        )
    result = subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True)
    return result.stdout.decode()


def export(mirror: Path, source: Source, into: Path, extra: Sequence[str] = ()) -> Path:
    """The source's files at its ref under `into` (the repository's layout)."""
    git_dir = mirror / source.repo.replace("/", "+") / "repo"
    git(mirror, source.repo, "rev-parse", "--verify", f"{source.ref}^{{commit}}")
    archive = subprocess.run(
        ["git", f"--git-dir={git_dir}", "archive", "--format=tar", source.ref, source.path, *extra],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / source.path


def prepare_chart(
    mirror: Path, chart: str, version: str, work: Path
) -> tuple[Path, dict[str, Any]]:
    """The chart as its repository publishes it, in `work/<chart>`, and where it came from."""
    spec = SOURCES.get((chart, version))
    if spec is None:
        raise SystemExit(
            f"no source known for chart {chart} {version}: add it to SOURCES in {__file__}"
        )
    checkout = work / "checkout"
    checkout.mkdir()
    extra = ("deploy/crds",) if spec.prepare is external_secrets_release else ()
    exported = export(mirror, spec.chart, checkout, extra)
    chart_dir = work / chart
    shutil.copytree(exported, chart_dir)
    if spec.prepare is not None:
        spec.prepare(chart_dir, checkout, version)
    subcharts: list[dict[str, Any]] = []
    for sub in spec.subcharts:
        sub_checkout = work / f"sub-{len(subcharts)}"
        sub_checkout.mkdir()
        sub_dir = export(mirror, sub, sub_checkout)
        name = yaml.safe_load((sub_dir / "Chart.yaml").read_text())["name"]
        (chart_dir / "charts").mkdir(exist_ok=True)
        shutil.copytree(sub_dir, chart_dir / "charts" / name)
        subcharts.append(describe(mirror, sub))
    return chart_dir, {**describe(mirror, spec.chart), "subcharts": subcharts}


def describe(mirror: Path, source: Source) -> dict[str, Any]:
    commit = git(mirror, source.repo, "rev-parse", f"{source.ref}^{{commit}}").strip()
    found: dict[str, Any] = {
        "repository": f"https://github.com/{source.repo}",
        "ref": source.ref,
        "commit": commit,
        "path": source.path,
    }
    if source.note:
        found["note"] = source.note
    return found


class ManifestLoader(yaml.CSafeLoader):
    """YAML as Kubernetes reads it: a plain `=` is the string "=" (YAML 1.1's value tag is
    unknown to Go's yaml, and a chart's rules and relabelings use `=`)."""


def _plain(loader: yaml.CSafeLoader, node: yaml.Node) -> Any:
    assert isinstance(node, yaml.ScalarNode)
    return loader.construct_scalar(node)


ManifestLoader.add_constructor("tag:yaml.org,2002:value", _plain)


@dataclass(frozen=True)
class Render:
    objects: list[dict[str, Any]]
    error: str = ""


def render(
    helm: str,
    chart_dir: Path,
    release: Release,
    values: Mapping[str, Any],
    *,
    schema: bool = True,
    crds: bool = True,
) -> Render:
    """`helm template` of the release. `crds`: with the charts' crds/ directories, which
    Helm copies verbatim (never templated), so no value can change them."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(values, handle)
        handle.flush()
        command = [
            helm,
            "template",
            release.name,
            str(chart_dir),
            "--namespace",
            release.namespace,
            "--values",
            handle.name,
            "--kube-version",
            f"v{release.kube_version}.0",
            "--skip-tests",
        ]
        if crds:
            command.append("--include-crds")
        if release.api_versions:
            command += ["--api-versions", ",".join(release.api_versions)]
        if not schema:
            command.append("--skip-schema-validation")
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return Render([], result.stderr.strip() or "helm failed")
    return Render([o for o in yaml.load_all(result.stdout, Loader=ManifestLoader) if o])


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


def flatten(value: Any, prefix: str, into: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            flatten(item, f"{prefix}.{key}", into)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            flatten(item, f"{prefix}[{index}]", into)
    else:
        into[prefix] = value


def locations(result: Render) -> dict[str, Any]:
    if result.error:
        return {"<error>": result.error}
    found: dict[str, Any] = {}
    for obj in result.objects:
        flatten(obj, object_key(obj), found)
    return found


def changed(base: Mapping[str, Any], other: Mapping[str, Any]) -> set[str]:
    return {
        key for key in base.keys() | other.keys() if base.get(key, DELETE) != other.get(key, DELETE)
    }


# The istiod chart's dumps of its values (templates/configmap-values.yaml: "modifying these
# values has no effect"; templates/istiod-injector-configmap.yaml: the injector's `values`).
VALUES_DUMP = re.compile(r"^ConfigMap/[^/]*/values(-[^.]*)?\.data\.")
INJECTOR_VALUES = re.compile(r"^ConfigMap/[^/]*/istio-sidecar-injector(-[^.]*)?\.data\.values$")


def leaves(values: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every value path set: a non-empty mapping is walked, anything else is a leaf."""
    if isinstance(values, dict) and values:
        for key, item in values.items():
            yield from leaves(item, (*path, key))
    else:
        yield path, values


def dotted(path: Sequence[str]) -> str:
    return ".".join(path)


def with_value(values: Mapping[str, Any], path: Sequence[str], new: Any) -> dict[str, Any]:
    changed_values = copy.deepcopy(dict(values))
    node = changed_values
    for key in path[:-1]:
        node = node[key]
    if new is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return changed_values


def perturbations(value: Any) -> list[Any]:
    """Other values of the same shape, then no value at all (the chart's default)."""
    if isinstance(value, bool):
        return [not value, DELETE]
    if isinstance(value, int | float):
        return [value + 1, DELETE]
    if isinstance(value, str):
        return [value + "-changed", DELETE]
    if isinstance(value, list):
        return [[], DELETE] if value else [["changed"], DELETE]
    if isinstance(value, dict):
        return [{"changed": "changed"}, DELETE]
    return [DELETE]


def injector_reads(path: Sequence[str], base: Render) -> bool:
    """Whether istiod's injection templates (rendered into the injector ConfigMap) name the
    path or one of its ancestors as `.Values.<path>`."""
    templates = "".join(
        o.get("data", {}).get("config", "")
        for o in base.objects
        if o.get("kind") == "ConfigMap"
        and str(o["metadata"]["name"]).startswith("istio-sidecar-injector")
    )
    # The dump keeps global, sidecarInjectorWebhook, revision and gateways under their names,
    # and puts the top-level cni and env under pilot (templates/istiod-injector-configmap.yaml).
    if path[0] in ("cni", "env"):
        path = ("pilot", *path)
    for end in range(len(path), 0, -1):
        pattern = re.escape(".Values." + dotted(path[:end])) + r"(?![\w])"
        if re.search(pattern, templates):
            return True
    return False


def pod_spec(obj: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod template metadata, pod spec) of a workload."""
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    template = spec["template"]
    return template.get("metadata") or {}, template["spec"]


def container_facts(container: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": container["name"],
        "image": container.get("image"),
        "resources": container.get("resources") or {},
        "securityContext": container.get("securityContext") or {},
        "ports": [p for p in container.get("ports") or [] if p.get("hostPort")],
        # An init container that keeps running (a native sidecar) says Always here.
        **({"restartPolicy": container["restartPolicy"]} if "restartPolicy" in container else {}),
    }


def workload_facts(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    meta, pod = pod_spec(obj)
    hook = (obj["metadata"].get("annotations") or {}).get("helm.sh/hook")
    found: dict[str, Any] = {
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace") or namespace,
        "labels": meta.get("labels") or {},
        "replicas": obj["spec"].get("replicas", 1)
        if obj["kind"] in ("Deployment", "StatefulSet")
        else None,
        "nodeSelector": pod.get("nodeSelector") or {},
        "priorityClassName": pod.get("priorityClassName"),
        "tolerations": pod.get("tolerations") or [],
        "affinity": pod.get("affinity") or {},
        # What Pod Security admission looks at (offline/pod_security.py).
        "pod": {
            key: pod[key]
            for key in ("securityContext", "hostNetwork", "hostPID", "hostIPC")
            if pod.get(key)
        },
        "podAnnotations": {
            k: v
            for k, v in (meta.get("annotations") or {}).items()
            if "apparmor" in k or "seccomp" in k
        },
        "volumes": [
            {"name": v["name"], "sources": sorted(set(v) - {"name"})}
            for v in pod.get("volumes") or []
        ],
        "initContainers": [container_facts(c) for c in pod.get("initContainers") or []],
        "containers": [container_facts(c) for c in pod.get("containers") or []],
    }
    if hook:
        found["hook"] = hook
    return found


def admission_pod(workload: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec Pod Security admission sees, rebuilt from a workload's facts."""
    return {
        **workload["pod"],
        "volumes": [
            {"name": v["name"], **{s: {} for s in v["sources"]}} for v in workload["volumes"]
        ],
        "initContainers": workload["initContainers"],
        "containers": workload["containers"],
    }


def omit_nil(value: Any) -> Any:
    """istio `pkg/kube/inject/template.go` (omitNil, 1.30.3), which the injection template
    applies to `global.proxy.resources`: null entries are dropped, and a mapping left empty."""
    if isinstance(value, dict):
        kept = {key: omit_nil(item) for key, item in value.items() if item is not None}
        kept = {key: item for key, item in kept.items() if item is not None}
        return kept or None
    return value


def webhook_facts(obj: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each webhook of a webhook configuration: what it calls and whether a failed call refuses
    the request (admissionregistration/v1 defaults failurePolicy to Fail)."""
    found = []
    for hook in obj.get("webhooks") or []:
        service = (hook.get("clientConfig") or {}).get("service") or {}
        found.append(
            {
                "configuration": f"{obj['kind']}/{obj['metadata']['name']}",
                "name": hook["name"],
                "failurePolicy": hook.get("failurePolicy", "Fail"),
                "service": f"{service.get('namespace')}/{service.get('name')}" if service else None,
            }
        )
    return found


# prometheus-operator's flags for the config reloader it adds to each Prometheus and
# Alertmanager pod (kube-prometheus-stack templates/prometheus-operator/deployment.yaml).
RELOADER_FLAGS = {
    "--config-reloader-cpu-request": ("requests", "cpu"),
    "--config-reloader-memory-request": ("requests", "memory"),
    "--config-reloader-cpu-limit": ("limits", "cpu"),
    "--config-reloader-memory-limit": ("limits", "memory"),
}
OPERATED_KINDS = ("Prometheus", "Alertmanager")


def config_reloader(objects: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The config reloader container prometheus-operator adds, from its Deployment's args:
    pkg/operator/config.go (ResourceRequirements, v0.93.0) leaves out a quantity of "0", and
    pkg/operator/config_reloader.go gives it this security context."""
    for obj in objects:
        if obj.get("kind") != "Deployment":
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            args = dict(
                a.split("=", 1)
                for a in container.get("args") or []
                if a.startswith("--") and "=" in a
            )
            if "--prometheus-config-reloader" not in args:
                continue
            resources: dict[str, dict[str, str]] = {"limits": {}, "requests": {}}
            for flag, (kind, name) in RELOADER_FLAGS.items():
                if args.get(flag, "0") != "0":
                    resources[kind][name] = args[flag]
            return {
                "name": "config-reloader",
                "image": args["--prometheus-config-reloader"],
                "resources": {k: v for k, v in resources.items() if v},
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "ports": [],
            }
    return None


def operated_facts(
    obj: Mapping[str, Any], reloader: Mapping[str, Any] | None, namespace: str
) -> dict[str, Any]:
    """A Prometheus or Alertmanager the operator runs as a StatefulSet: its placement and
    containers as the custom resource and the operator's flags give them (not a full pod
    spec: the operator adds what it adds, so Pod Security is not judged from this)."""
    spec = obj.get("spec") or {}
    main = {
        "name": obj["kind"].lower(),
        "image": spec.get("image"),
        "resources": spec.get("resources") or {},
        "securityContext": {},
        "ports": [],
    }
    return {
        "kind": obj["kind"],
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"].get("namespace") or namespace,
        "labels": {},
        "replicas": spec.get("replicas", 1),
        "nodeSelector": spec.get("nodeSelector") or {},
        "priorityClassName": spec.get("priorityClassName"),
        "tolerations": spec.get("tolerations") or [],
        "affinity": spec.get("affinity") or {},
        "pod": {"securityContext": spec["securityContext"]} if spec.get("securityContext") else {},
        "podAnnotations": {},
        "volumes": [],
        "initContainers": [{**reloader, "name": "init-config-reloader"}] if reloader else [],
        "containers": [main, *([dict(reloader)] if reloader else [])],
    }


def render_facts(base: Render, release: Release) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    crds: dict[str, list[str]] = {}
    workloads = []
    webhooks: list[dict[str, Any]] = []
    services: dict[str, Any] = {}
    budgets = []
    for obj in base.objects:
        kind = obj["kind"]
        kinds[kind] = kinds.get(kind, 0) + 1
        meta = obj["metadata"]
        where = f"{meta.get('namespace') or release.namespace}/{meta['name']}"
        if kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
            webhooks += webhook_facts(obj)
        if kind == "Service":
            services[where] = (obj.get("spec") or {}).get("selector") or {}
        if kind == "PodDisruptionBudget":
            spec = obj.get("spec") or {}
            budgets.append(
                {
                    "name": where,
                    "selector": (spec.get("selector") or {}).get("matchLabels") or {},
                    **{k: spec[k] for k in ("maxUnavailable", "minAvailable") if k in spec},
                }
            )
        if kind == "CustomResourceDefinition":
            spec = obj["spec"]
            crds[f"{spec['group']}/{spec['names']['kind']}"] = [
                v["name"] for v in spec["versions"] if v.get("served")
            ]
        if kind in WORKLOAD_KINDS:
            workloads.append(workload_facts(obj, release.namespace))
    images = sorted(
        {c["image"] for w in workloads for c in [*w["initContainers"], *w["containers"]]}
    )
    found: dict[str, Any] = {
        "kinds": dict(sorted(kinds.items())),
        "images": images,
        "workloads": sorted(workloads, key=lambda w: (w["kind"], w["name"])),
        "crds": dict(sorted(crds.items())),
        # Pods an operator of the chart runs from the chart's custom resources.
        "operated": [
            operated_facts(o, config_reloader(base.objects), release.namespace)
            for o in base.objects
            if o.get("kind") in OPERATED_KINDS
            and str(o.get("apiVersion", "")).startswith("monitoring.coreos.com/")
        ],
        "webhooks": sorted(webhooks, key=lambda w: (w["configuration"], w["name"])),
        "services": dict(sorted(services.items())),
        "disruption_budgets": sorted(budgets, key=lambda b: b["name"]),
    }
    injector = [
        o
        for o in base.objects
        if o.get("kind") == "ConfigMap"
        and str(o["metadata"]["name"]).startswith("istio-sidecar-injector")
    ]
    if injector:
        # What istiod injects into every meshed pod and gateway: the proxy's image and resources.
        dumped = json.loads(injector[0]["data"]["values"])["global"]
        found["injected_proxy"] = {
            "image": f"{dumped['hub']}/{dumped['proxy']['image']}:{dumped['tag']}",
            "resources": omit_nil(dumped["proxy"].get("resources")) or {},
        }
    return found


def pod_security_findings(facts: Mapping[str, Any], release: Release) -> dict[str, list[str]]:
    found = {}
    for workload in facts["workloads"]:
        level = release.pod_security.get(workload["namespace"], "privileged")
        problems = violations(admission_pod(workload), _level(level), workload["podAnnotations"])
        if problems:
            found[f"{workload['kind']}/{workload['name']}"] = problems
    return found


def _level(level: str) -> Level:
    if level not in ("privileged", "baseline", "restricted"):
        raise SystemExit(f"unknown Pod Security level {level!r}")
    return level  # type: ignore[return-value]


def image_releases(mirror: Path, release: Release, facts: Mapping[str, Any]) -> dict[str, Any]:
    """For each image whose tag the program sets: the upstream tag that released it."""
    found = {}
    for image in facts["images"]:
        repository, _, tag = image.rpartition(":")
        for known, (repo, pattern) in IMAGE_RELEASES.items():
            if repository.endswith(known):
                ref = pattern.format(tag.removeprefix("v"))
                commit = git(mirror, repo, "rev-parse", "--verify", f"{ref}^{{commit}}").strip()
                found[image] = {
                    "repository": f"https://github.com/{repo}",
                    "ref": ref,
                    "commit": commit,
                }
    return found


# Value paths that may carry a pod's security (the carriers of Pod Security are searched among
# these: removing any other value cannot change what admission sees in the chart's render).
SECURITY_SEGMENT = re.compile(
    r"(?i)securitycontext|seccomp|capabilit|runas|privileged|privilegeescalation|readonlyroot"
    r"|host(network|pid|ipc|port|path)|sysctl|apparmor|selinux"
)


@dataclass(frozen=True)
class Probe:
    """A deliberate mistake rendered beside the program's values, so that the tests can show
    their checks catch it (negative controls): values set (dotted path -> value) and value
    subtrees removed."""

    name: str
    set: Mapping[str, Any] = field(default_factory=dict)
    remove: tuple[str, ...] = ()


PROBES: dict[str, tuple[Probe, ...]] = {
    # The istiod chart reads its priority class at global.priorityClassName
    # (istio-discovery templates/deployment.yaml); a top-level key lands in the values dump only.
    "istiod": (
        Probe(
            "top-level priorityClassName",
            set={"priorityClassName": "platform-critical"},
            remove=("global.priorityClassName",),
        ),
    ),
    # The controller's placement only: the webhook and the cert controller read theirs under
    # webhook.* and certController.* (chart 0.19.2 templates/*-deployment.yaml).
    "external-secrets": (Probe("controller-only placement", remove=("webhook", "certController")),),
}


class Renderer:
    """`helm template` of one release's chart, remembering each distinct set of values."""

    def __init__(self, helm: str, chart_dir: Path, release: Release) -> None:
        self.helm, self.chart_dir, self.release = helm, chart_dir, release
        self.cache: dict[str, Render] = {}
        self.flat: dict[str, dict[str, Any]] = {}

    def __call__(
        self, values: Mapping[str, Any], *, schema: bool = False, crds: bool = False
    ) -> Render:
        key = f"{schema}:{crds}:{json.dumps(values, sort_keys=True)}"
        if key not in self.cache:
            self.cache[key] = render(
                self.helm, self.chart_dir, self.release, values, schema=schema, crds=crds
            )
        return self.cache[key]

    def locations(self, values: Mapping[str, Any], *, crds: bool = False) -> dict[str, Any]:
        key = f"{crds}:{json.dumps(values, sort_keys=True)}"
        if key not in self.flat:
            self.flat[key] = locations(self(values, crds=crds))
        return self.flat[key]


def removed(values: Mapping[str, Any], dotted_path: str) -> dict[str, Any]:
    path = dotted_path.split(".")
    node: Any = values
    for key in path[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and path[-1] in node:
        return with_value(values, path, DELETE)
    return copy.deepcopy(dict(values))


def probe_values(values: Mapping[str, Any], probe: Probe) -> dict[str, Any]:
    probed = copy.deepcopy(dict(values))
    for dotted_path in probe.remove:
        probed = removed(probed, dotted_path)
    for dotted_path, value in probe.set.items():
        path = dotted_path.split(".")
        node = probed
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return probed


def dropped(values: Mapping[str, Any], path: Sequence[str]) -> dict[str, Any]:
    """`values` without the value at `path`, and without the mappings that leaves empty (as if
    the program had never set it: Helm then merges in the chart's default)."""
    found = with_value(values, path, DELETE)
    for end in range(len(path) - 1, 0, -1):
        node: Any = found
        for key in path[: end - 1]:
            node = node[key]
        if node[path[end - 1]] == {}:
            del node[path[end - 1]]
        else:
            break
    return found


def without_images(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: without_images(v) for k, v in values.items() if k != "image"}
    return values


def reads(
    renders: Renderer,
    values: Mapping[str, Any],
    path: tuple[str, ...],
    value: Any,
    noise: set[str],
) -> str:
    """ "read", "injector" (changes only istiod's injector values, whose templates name it)
    or "unread". Renders leave out the crds/ directories unless nothing else changed (a
    subchart of CRDs only, enabled by the value, changes only them)."""
    injector_only = False
    for crds in (False, True):
        first = renders.locations(values, crds=crds)
        for new in perturbations(value):
            other = renders(with_value(values, path, new), crds=crds)
            diff = {k for k in changed(first, locations(other)) - noise if not VALUES_DUMP.match(k)}
            if diff and all(INJECTOR_VALUES.match(key) for key in diff):
                injector_only = True
            elif diff:
                return "read"
        if injector_only:
            break
    base = renders(values)
    return "injector" if injector_only and injector_reads(path, base) else "unread"


def analyse(
    helm: str, mirror: Path, chart_dir: Path, release: Release, log: Callable[[str], None]
) -> dict[str, Any]:
    renders = Renderer(helm, chart_dir, release)
    # The facts come from the whole render; the comparisons leave out the crds/ directories.
    complete = renders(release.values, schema=True, crds=True)
    if complete.error:
        raise SystemExit(
            f"{release.stack}/{release.name}: our values do not render: {complete.error}"
        )
    base = renders(release.values)
    first = locations(base)
    # A second render of the same values: what differs is generated anew each time.
    noise = changed(first, locations(render(helm, chart_dir, release, release.values, crds=False)))
    facts = render_facts(complete, release)
    found: dict[str, list[str]] = {"read": [], "injector": [], "unread": []}
    carriers = []
    restricted_ok = not pod_security_findings(facts, release)
    for path, value in leaves(release.values):
        if not path:
            continue
        verdict = reads(renders, release.values, path, value, noise)
        name = dotted(path)
        found[verdict].append(name)
        if restricted_ok and verdict != "unread" and SECURITY_SEGMENT.search(name):
            without = renders(dropped(release.values, path))
            if not without.error and pod_security_findings(render_facts(without, release), release):
                carriers.append(name)
        log(f"  {name}: {verdict}")
    probes = {}
    for probe in PROBES.get(release.name, ()):
        probed = probe_values(release.values, probe)
        result = renders(probed)
        probes[probe.name] = {
            "set": dict(probe.set),
            "removed": list(probe.remove),
            "unread": sorted(
                dotted_path
                for dotted_path, value in probe.set.items()
                if reads(renders, probed, tuple(dotted_path.split(".")), value, noise) == "unread"
            ),
            "workloads": render_facts(result, release)["workloads"],
        }
    # The chart's own images: our values without any `image` block of ours.
    defaults = renders(without_images(release.values))
    default_images = (
        sorted(
            {
                c["image"]
                for w in render_facts(defaults, release)["workloads"]
                for c in [*w["initContainers"], *w["containers"]]
            }
        )
        if not defaults.error
        else []
    )
    return {
        "release": release.name,
        "namespace": release.namespace,
        "kube_version": release.kube_version,
        "api_versions": list(release.api_versions),
        "values_sha256": values_digest(release.values),
        "read": sorted(found["read"]),
        "read_by_injector": sorted(found["injector"]),
        "unread": sorted(found["unread"]),
        "noise": sorted(noise),
        "renders": len(renders.cache) + 1,
        "pod_security": {
            "levels": {
                w["namespace"]: release.pod_security.get(w["namespace"], "privileged")
                for w in facts["workloads"]
            },
            "violations": pod_security_findings(facts, release),
            # Security values without which the chart's defaults would fail the level.
            "carried_by": sorted(carriers),
        },
        "default_images": default_images,
        "image_releases": image_releases(mirror, release, facts),
        "probes": probes,
        **facts,
    }


def helm_version(helm: str) -> str:
    return subprocess.run(
        [helm, "version", "--template", "{{.Version}}"], check=True, capture_output=True, text=True
    ).stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--helm", default="helm", help="the helm binary (4.x)")
    parser.add_argument(
        "--mirror",
        type=Path,
        default=Path("/work/.mirror"),
        help="directory of bare clones, <owner>+<name>/repo",
    )
    parser.add_argument("--chart", action="append", help="only these charts (default: all)")
    parser.add_argument("--out", type=Path, default=FACTS_DIR)
    args = parser.parse_args(argv)
    releases = find_releases(STACKS)
    charts = sorted({(r.chart, r.version, r.repository) for r in releases})
    args.out.mkdir(parents=True, exist_ok=True)
    version = helm_version(args.helm)
    for chart, chart_version, repository in charts:
        if args.chart and chart not in args.chart:
            continue
        print(f"{chart} {chart_version}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="chart-facts-") as work:
            chart_dir, source = prepare_chart(args.mirror, chart, chart_version, Path(work))
            stacks = {}
            for release in releases:
                if (release.chart, release.version) != (chart, chart_version):
                    continue
                print(f" {release.stack}/{release.name}", file=sys.stderr)
                stacks[release.stack] = analyse(
                    args.helm,
                    args.mirror,
                    chart_dir,
                    release,
                    lambda line: print(line, file=sys.stderr),
                )
        facts = {
            "chart": chart,
            "version": chart_version,
            "repository": repository,
            "source": source,
            "helm": version,
            "refresh": REFRESH.format(chart=chart),
            "stacks": stacks,
        }
        path = args.out / f"{chart}-{chart_version}.json"
        path.write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n")
        print(f" -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
