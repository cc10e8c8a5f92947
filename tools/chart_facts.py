"""Facts about the pinned Helm charts, derived from each chart's source with a real `helm template`.

Run by hand, from the repository root, with the chart sources at hand (never in CI):

    .venv/bin/python -m tools.chart_facts --helm /path/to/helm [--chart NAME ...]

Without `--chart` every chart of every stack is refreshed (about an hour on a small machine).

For every Helm release the program creates in every stack (found by running the program under
the offline engine), the script takes the chart's source at the pinned version from a local bare
clone of its public repository (`<mirror>/<owner>+<name>/repo`, e.g. made with
`git clone --bare https://github.com/<owner>/<name> <mirror>/<owner>+<name>/repo`), applies what
the chart's own release process applies (named per chart below), adds its subcharts, and renders
it with the values the provider hands Helm: the Release's `valueYamlFiles` merged in order and
its `values` over them (components/shared/helm.py, as pulumi-kubernetes' decodeRelease does).

Which values a chart reads: for every value path the program sets (mappings walked by key, lists
by index), the chart is rendered again with that value changed, and again without it, and what
changed is judged field by field against the schemas the cluster applies (the Kubernetes
OpenAPI schemas of the stack's minor version and the CRDs' schemas, strict: tools/chart_schemas.py):
- `read`: a field the cluster knows changed outside ConfigMap and Secret data (or the template
  failed, which only a value the templates use can cause);
- `read_by_injector` (the istiod chart only): only the sidecar injector's values dump changed,
  and istiod's injection templates (the same ConfigMap's `config`) name the path exactly, or the
  path lies in one of the few subtrees they copy whole (INJECTOR_WHOLE_READS, cited);
- `passthrough`: only ConfigMap or Secret data changed: the value is copied into a file the
  chart does not read. Where it lands and the rendered documents are recorded; the tests allow a
  pass-through only under a root the chart's values.yaml documents as such and validate the
  documents where a validator exists;
- `unknown_field`: only fields the cluster drops or refuses by name changed (a misspelt key
  copied with toYaml);
- `unread`: nothing else changed. Noise (what differs between two renders of the same values),
  a pod's `checksum/*` annotation (a digest of data judged on its own) and, for istiod, its
  `values` ConfigMap (templates/configmap-values.yaml: "modifying these values has no effect")
  never count.
Each render's objects are validated too: fields the cluster would drop or refuse, and kinds
without a schema, are recorded (the tests allow none).

What this misjudges errs on the safe side: a value the chart really uses is reported unread, and
the test fails until a person looks. That happens for a value used only where the render shows
nothing of it: in what differs between two renders anyway (generated certificates and secrets,
random suffixes), behind `lookup` (answered empty by `helm template`), in NOTES.txt or test hooks
(`--skip-tests`), in a crds/ directory (copied verbatim), only in a checksum annotation, or in
istiod's injection templates under a name other than its own (`index .Values ...`).

Everything else is recorded from the renders: kinds, images, each workload's placement,
security contexts and requests, and the CRDs' served versions. The facts go to
tests/chart_facts/<chart>-<version>.json; the chart sources never enter the repository. The
tests read only those files (tests/test_chart_facts.py).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.shared.helm import release_values
from offline.pod_security import Level, violations
from tools import proto_schema
from tools.chart_schemas import Path as ValuePath
from tools.chart_schemas import Schemas, dotted, under

# The facts files' layout; older files are stale whatever their values.
FACTS_FORMAT = 2
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
    # The chart per Kubernetes minor (stacks/version_support.py): 9.53.0 for 1.34, 9.59.0 for 1.35.
    ("cluster-autoscaler", "9.59.0"): ChartSource(
        Source(
            "kubernetes/autoscaler",
            "cluster-autoscaler-chart-9.59.0",
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

# Built-in APIs every supported cluster serves that `helm template` does not assume (its
# default API set comes from client-go's scheme, without the aggregator's group). Measured with
# helm 4.1.4: without this, prometheus-adapter 5.3.0 (templates/*-apiservice.yaml test
# `.Capabilities.APIVersions.Has "apiregistration.k8s.io/v1"`) renders apiregistration
# v1beta1 APIServices, which Kubernetes removed in 1.22 (Deprecated API Migration Guide).
CLUSTER_APIS = ("apiregistration.k8s.io/v1",)

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
    # What the provider hands Helm (the Release's value files, its values over them).
    values: dict[str, Any]
    kube_version: str
    api_versions: tuple[str, ...]
    # The Pod Security level each namespace of the stack enforces.
    pod_security: dict[str, str] = field(default_factory=dict)


def values_digest(values: Any) -> str:
    """What the facts of one release were rendered from (the tests compare it)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def value_files(inputs: Mapping[str, Any], where: str) -> list[str]:
    """The texts of a recorded Release's `valueYamlFiles` (the program uses StringAssets)."""
    texts = []
    for asset in inputs.get("valueYamlFiles") or []:
        if not isinstance(asset, dict) or "text" not in asset:
            raise SystemExit(f"{where}: valueYamlFiles holds {asset!r}, not a StringAsset")
        texts.append(str(asset["text"]))
    return texts


def find_releases(stacks: Sequence[str]) -> list[Release]:
    from offline.engine import run_stack
    from offline.synth import kubernetes_objects

    found = []
    for stack in stacks:
        run = run_stack(stack)
        settings = run.namespace["settings"]
        releases = run.of_type(HELM_RELEASE)
        names = {r.name for r in releases}
        apis = tuple(
            sorted({*CLUSTER_APIS, *(api for name in names for api in CRD_APIS.get(name, ()))})
        )
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
                    values=release_values(
                        r.inputs.get("values") or {}, value_files(r.inputs, f"{stack}/{r.name}")
                    ),
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
    return Render(installed(o for o in yaml.load_all(result.stdout, Loader=ManifestLoader) if o))


def installed(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The objects Helm creates from a render: a `v1` List is created item by item (Helm's
    kube client builds its resources with the resource builder's Flatten(), helm/helm
    pkg/kube/client.go buildResourceList), so each item is judged as the object it becomes."""
    found: list[dict[str, Any]] = []
    for obj in objects:
        if obj.get("apiVersion") == "v1" and obj.get("kind") == "List":
            found += installed(item for item in obj.get("items") or [] if item)
        else:
            found.append(obj)
    return found


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj.get('kind')}/{meta.get('namespace', '')}/{meta.get('name')}"


# A place in a render: (object key, path inside the object).
Location = tuple[str, ValuePath]
ERROR = "<error>"


def flatten(value: Any, where: str, path: ValuePath, into: dict[Location, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            flatten(item, where, (*path, key), into)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            flatten(item, where, (*path, index), into)
    else:
        into[(where, path)] = value


@dataclass(frozen=True)
class View:
    """A render, flattened: every leaf by its location, and the objects by key."""

    render: Render
    locations: dict[Location, Any]
    objects: dict[str, dict[str, Any]]


def view(result: Render) -> View:
    if result.error:
        return View(result, {(ERROR, ()): result.error}, {})
    found: dict[Location, Any] = {}
    objects = {}
    for obj in result.objects:
        key = object_key(obj)
        objects[key] = obj
        flatten(obj, key, (), found)
    return View(result, found, objects)


def changed(base: Mapping[Location, Any], other: Mapping[Location, Any]) -> set[Location]:
    return {
        key for key in base.keys() | other.keys() if base.get(key, DELETE) != other.get(key, DELETE)
    }


def shown(location: Location) -> str:
    where, path = location
    return f"{where}.{dotted(path)}" if path else where


# Fields that hold a file's content, copied or built by the chart: the cluster stores them
# without looking inside.
DATA_FIELDS = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}
# The istiod chart's dumps of its values (istio-discovery 1.30.3): templates/configmap-values.yaml
# (ConfigMap `values[-<revision>]`: "modifying these values has no effect"), and
# templates/istiod-injector-configmap.yaml (ConfigMap `istio-sidecar-injector[-<revision>]`,
# key `values`: read by the injection templates in its key `config` when istiod injects a pod).
ISTIOD_CHART = "istiod"
VALUES_DUMP = re.compile(r"^values(-.+)?$")
INJECTOR = re.compile(r"^istio-sidecar-injector(-.+)?$")
# Subtrees of the injector's values the injection templates copy whole (istio-discovery
# files/injection-template.yaml at 1.30.3), and the Kubernetes type each lands in (its content
# is validated as such). Any other path must be named exactly.
INJECTOR_WHOLE_READS: dict[ValuePath, str] = {
    # Lines 22-23: `toYaml (omitNil .Values.global.proxy.resources)`, the proxy's resources.
    ("global", "proxy", "resources"): "io.k8s.api.core.v1.ResourceRequirements",
    # Lines 178-180 and 417-419: `toYaml .Values.global.proxy.seccompProfile`.
    ("global", "proxy", "seccompProfile"): "io.k8s.api.core.v1.SeccompProfile",
}


def kind_and_name(where: str) -> tuple[str, str]:
    kind, _, rest = where.partition("/")
    return kind, rest.rpartition("/")[2]


def judge(location: Location, base: View, other: View, schemas: Schemas, chart: str) -> str:
    """What one changed location says: "known" (a field the cluster uses), "data" (inside a
    ConfigMap's or Secret's content), "injector", "unknown" (a field the cluster drops or
    refuses by name) or "ignored"."""
    where, path = location
    if where == ERROR:
        return "known"
    kind, name = kind_and_name(where)
    if chart == ISTIOD_CHART and kind == "ConfigMap" and path[:1] == ("data",):
        if VALUES_DUMP.match(name):
            return "ignored"
        if INJECTOR.match(name) and path == ("data", "values"):
            return "injector"
    if path[:1] and path[0] in DATA_FIELDS.get(kind, ()):
        return "data"
    if len(path) >= 2 and path[-2] == "annotations" and str(path[-1]).startswith("checksum/"):
        return "ignored"
    present = [v for v in (base, other) if location in v.locations]
    if present and all(under(path, schemas.problems(v.objects[where])) for v in present):
        return "unknown"
    return "known"


def injector_templates(objects: Mapping[str, Mapping[str, Any]]) -> str:
    """istiod's injection templates as it runs them: the injector ConfigMap's `config`, with
    `(.Values.a).b` written `.Values.a.b` (files/injection-template.yaml uses both forms)."""
    text = "".join(
        str((obj.get("data") or {}).get("config", ""))
        for where, obj in objects.items()
        if kind_and_name(where)[0] == "ConfigMap" and INJECTOR.match(kind_and_name(where)[1])
    )
    return re.sub(r"\(\s*(\.Values(?:\.\w+)+)\s*\)((?:\.\w+)+)", r"\1\2", text)


def injector_path(path: ValuePath) -> ValuePath:
    """Where a value path sits in the injector's dump: the top-level `cni` and `env` are put
    under `pilot` (templates/istiod-injector-configmap.yaml at 1.30.3)."""
    return ("pilot", *path) if path[:1] in (("cni",), ("env",)) else path


def injector_reads(path: ValuePath, objects: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether istiod's injection templates read the path: named exactly as `.Values.<path>`,
    or inside a subtree they copy whole."""
    in_dump = injector_path(path)
    if any(in_dump[: len(root)] == root for root in INJECTOR_WHOLE_READS):
        return True
    if any(isinstance(part, int) for part in in_dump):
        return False
    name = re.escape(".Values." + ".".join(str(p) for p in in_dump))
    return re.search(name + r"(?![\w.])", injector_templates(objects)) is not None


def injector_values(objects: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    for where, obj in objects.items():
        kind, name = kind_and_name(where)
        if kind == "ConfigMap" and INJECTOR.match(name) and "values" in (obj.get("data") or {}):
            found: dict[str, Any] = json.loads(obj["data"]["values"])
            return found
    return {}


def leaves(values: Any, path: ValuePath = ()) -> Iterator[tuple[ValuePath, Any]]:
    """Every value path set: non-empty mappings walked by key, non-empty lists by index;
    anything else (a scalar, an empty mapping or list) is a leaf."""
    if isinstance(values, dict) and values:
        for key, item in values.items():
            yield from leaves(item, (*path, key))
    elif isinstance(values, list) and values:
        for index, item in enumerate(values):
            yield from leaves(item, (*path, index))
    else:
        yield path, values


def value_at(values: Any, path: ValuePath) -> Any:
    node = values
    for key in path:
        node = node[key]
    return node


def with_value(values: Mapping[str, Any], path: ValuePath, new: Any) -> dict[str, Any]:
    """`values` with `new` at `path` (DELETE: without the key, or without the list item)."""
    changed_values = copy.deepcopy(dict(values))
    node: Any = changed_values
    for key in path[:-1]:
        node = node[key]
    if new is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = new
    return changed_values


# What stands in for a mapping's only key when that key is removed: an emptied mapping often
# switches a feature off (the gateway chart renders no PodDisruptionBudget for `{}`), which says
# nothing about the key itself, misspelt or not.
PLACEHOLDER = "chart-facts-placeholder"


def perturbed(values: Mapping[str, Any], path: ValuePath, new: Any) -> dict[str, Any]:
    """`values` with `new` at `path`; a removal that would empty a mapping leaves a placeholder
    key in it instead."""
    found = with_value(values, path, new)
    if new is DELETE and len(path) > 1 and value_at(found, path[:-1]) == {}:
        value_at(found, path[:-1])[PLACEHOLDER] = PLACEHOLDER
    return found


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
    dump = injector_values(view(base).objects) if release.chart == ISTIOD_CHART else {}
    if dump:
        # What istiod injects into every meshed pod and gateway: the proxy's image and resources.
        dumped = dump["global"]
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


SECURITY_SEGMENT = re.compile(
    r"(?i)securitycontext|seccomp|capabilit|runas|privileged|privilegeescalation|readonlyroot"
    r"|host(network|pid|ipc|port|path)|sysctl|apparmor|selinux"
)


@dataclass(frozen=True)
class Probe:
    """A deliberate mistake rendered beside the program's values, so that the tests can show
    their checks catch it (negative controls): values set (path -> value) and value subtrees
    removed."""

    name: str
    set: tuple[tuple[ValuePath, Any], ...] = ()
    remove: tuple[ValuePath, ...] = ()


PROBES: dict[str, tuple[Probe, ...]] = {
    "istiod": (
        # The chart reads its priority class at global.priorityClassName
        # (istio-discovery templates/deployment.yaml); a top-level key lands in the dumps only.
        Probe(
            "top-level priorityClassName",
            set=((("priorityClassName",), "platform-critical"),),
            remove=(("global", "priorityClassName"),),
        ),
        # Misspelt keys that reach the injector's dump (which holds all of global and cni) but
        # that no injection template names.
        Probe(
            "global.proxy.resorces",
            set=((("global", "proxy", "resorces", "limits", "memory"), "1Gi"),),
        ),
        Probe(
            "global.proxyy.seccompProfile",
            set=((("global", "proxyy", "seccompProfile", "type"), "RuntimeDefault"),),
        ),
        Probe("cni.bogus", set=((("cni", "bogus"), True),)),
        # A misspelt MeshConfig key: copied into the `istio` ConfigMap, which istiod reads
        # ignoring unknown keys.
        Probe(
            "meshConfig.outboundTrafficPolicy.mod",
            set=((("meshConfig", "outboundTrafficPolicy", "mod"), "REGISTRY_ONLY"),),
            remove=(("meshConfig", "outboundTrafficPolicy", "mode"),),
        ),
    ),
    "istio-ingressgateway": (
        # Misspelt keys the gateway chart copies with toYaml (gateway 1.30.3
        # templates/poddisruptionbudget.yaml, templates/deployment.yaml).
        Probe(
            "podDisruptionBudget.maxUnavailabel",
            set=((("podDisruptionBudget", "maxUnavailabel"), 1),),
            remove=(("podDisruptionBudget", "maxUnavailable"),),
        ),
        Probe(
            "securityContext.runAsNonRot",
            set=((("securityContext", "runAsNonRot"), True),),
            remove=(("securityContext", "runAsNonRoot"),),
        ),
        Probe(
            "resources.limits.memroy",
            set=((("resources", "limits", "memroy"), "1Gi"),),
            remove=(("resources", "limits", "memory"),),
        ),
    ),
    # The controller's placement only: the webhook and the cert controller read theirs under
    # webhook.* and certController.* (chart 0.19.2 templates/*-deployment.yaml).
    "external-secrets": (
        Probe("controller-only placement", remove=(("webhook",), ("certController",))),
        Probe(
            "resources.limits.memroy",
            set=((("resources", "limits", "memroy"), "1Gi"),),
            remove=(("resources", "limits", "memory"),),
        ),
    ),
    "kube-prometheus-stack": (
        # A misspelt Alertmanager route key: copied into the configuration Secret.
        Probe(
            "alertmanager.config.route.group_intervall",
            set=((("alertmanager", "config", "route", "group_intervall"), "5m"),),
            remove=(("alertmanager", "config", "route", "group_interval"),),
        ),
        # A misspelt Grafana section: copied into grafana.ini.
        Probe(
            "grafana.ini sever",
            set=((("grafana", "grafana.ini", "sever", "root_url"), "https://grafana.example"),),
        ),
    ),
}


class Renderer:
    """`helm template` of one release's chart, remembering each distinct set of values."""

    def __init__(self, helm: str, chart_dir: Path, release: Release) -> None:
        self.helm, self.chart_dir, self.release = helm, chart_dir, release
        self.cache: dict[str, Render] = {}
        self.views: dict[str, View] = {}

    def __call__(
        self, values: Mapping[str, Any], *, schema: bool = False, crds: bool = False
    ) -> Render:
        key = f"{schema}:{crds}:{json.dumps(values, sort_keys=True)}"
        if key not in self.cache:
            self.cache[key] = render(
                self.helm, self.chart_dir, self.release, values, schema=schema, crds=crds
            )
        return self.cache[key]

    def view(self, values: Mapping[str, Any], *, crds: bool = False) -> View:
        key = f"{crds}:{json.dumps(values, sort_keys=True)}"
        if key not in self.views:
            self.views[key] = view(self(values, crds=crds))
        return self.views[key]


def probe_values(values: Mapping[str, Any], probe: Probe) -> dict[str, Any]:
    probed = copy.deepcopy(dict(values))
    for path in probe.remove:
        try:
            value_at(probed, path)
        except (KeyError, IndexError, TypeError):
            continue
        probed = with_value(probed, path, DELETE)
    for path, value in probe.set:
        node: Any = probed
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return probed


def dropped(values: Mapping[str, Any], path: ValuePath) -> dict[str, Any]:
    """`values` without the value at `path`, and without the mappings and lists that leaves
    empty (as if the program had never set it: Helm then merges in the chart's default)."""
    found = with_value(values, path, DELETE)
    for end in range(len(path) - 1, 0, -1):
        parent = value_at(found, path[: end - 1])
        if parent[path[end - 1]] in ({}, []):
            del parent[path[end - 1]]
        else:
            break
    return found


def item_path(path: ValuePath) -> ValuePath:
    """The path up to its last list item: a security value inside a list item (a sysctl's
    value) is dropped with its item, never leaving half an item behind."""
    ends = [index for index, part in enumerate(path) if isinstance(part, int)]
    return path[: ends[-1] + 1] if ends else path


def without_images(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: without_images(v) for k, v in values.items() if k != "image"}
    return values


@dataclass(frozen=True)
class Verdict:
    kind: str
    # Where a pass-through value lands: "<kind>/<namespace>/<name> <field>[<key>]".
    landings: tuple[str, ...] = ()


def landing(location: Location) -> str:
    where, path = location
    return f"{where} {path[0]}[{path[1]}]"


def classify(
    renders: Renderer,
    schemas: Schemas,
    values: Mapping[str, Any],
    path: ValuePath,
    value: Any,
    noise: set[Location],
) -> Verdict:
    """How the chart uses the value at `path` (see the module's docstring). Renders leave out
    the crds/ directories unless nothing else changed (a subchart of CRDs only, enabled by the
    value, changes only them)."""
    chart = renders.release.chart
    landings: set[str] = set()
    injector = unknown = False
    for crds in (False, True):
        base = renders.view(values, crds=crds)
        anything = False
        for new in perturbations(value):
            other = renders.view(perturbed(values, path, new), crds=crds)
            for location in changed(base.locations, other.locations) - noise:
                found = judge(location, base, other, schemas, chart)
                if found == "known":
                    return Verdict("read")
                anything |= found != "ignored"
                # A data key named by the placeholder is the placeholder's own (it stood in
                # for the removed key), not a file the value lands in.
                if found == "data" and location[1][1:2] != (PLACEHOLDER,):
                    landings.add(landing(location))
                injector |= found == "injector"
                unknown |= found == "unknown"
        if anything:
            break
    if injector and injector_reads(path, renders.view(values).objects):
        return Verdict("read_by_injector")
    if landings:
        return Verdict("passthrough", tuple(sorted(landings)))
    return Verdict("unknown_field" if unknown else "unread")


def documents(base: View, landings: Sequence[str]) -> dict[str, dict[str, str]]:
    """The rendered content of each data key a pass-through value lands in (a Secret's data
    decoded)."""
    found: dict[str, dict[str, str]] = {}
    for spot in landings:
        where, _, rest = spot.partition(" ")
        field_name, _, key = rest.partition("[")
        key = key.removesuffix("]")
        obj = base.objects.get(where)
        if obj is None or key not in (obj.get(field_name) or {}):
            continue
        text = str(obj[field_name][key])
        if field_name in ("data", "binaryData") and kind_and_name(where)[0] == "Secret":
            try:
                text = base64.b64decode(text).decode()
            except (binascii.Error, UnicodeDecodeError):
                text = "<binary>"
        found.setdefault(where, {})[key] = text
    return {where: dict(sorted(keys.items())) for where, keys in sorted(found.items())}


def schema_facts(base: View, schemas: Schemas, chart: str) -> dict[str, list[str]]:
    """Fields of the render the cluster would drop or refuse, and kinds it has no schema for."""
    problems = []
    unvalidated = set()
    for where, obj in base.objects.items():
        if not schemas.known(obj):
            unvalidated.add(f"{obj.get('apiVersion')}/{obj.get('kind')}")
        problems += [f"{where}: {dotted(p.path)}: {p.reason}" for p in schemas.problems(obj)]
    if chart == ISTIOD_CHART:
        dump = injector_values(base.objects)
        for root, definition in INJECTOR_WHOLE_READS.items():
            try:
                subtree = value_at(dump, root)
            except (KeyError, TypeError):
                continue
            if root[-1] == "resources":
                subtree = omit_nil(subtree) or {}
            problems += [
                f"injector values {dotted((*root, *p.path))}: {p.reason}"
                for p in schemas.definition_problems(definition, subtree)
            ]
    return {"problems": sorted(problems), "unvalidated": sorted(unvalidated)}


# Custom resource groups, and the release (of the same stack) whose chart defines them.
GROUP_PROVIDERS = {api.split("/")[0]: name for name, apis in CRD_APIS.items() for api in apis}
BUILT_IN_GROUPS = re.compile(r"^$|^[a-z]+$|\.k8s\.io$")


class CrdSource:
    """The CRDs of other releases' charts, for custom resources a chart creates of a kind
    another chart defines (a ServiceMonitor, say)."""

    def __init__(self, helm: str, mirror: Path, releases: Sequence[Release], work: Path) -> None:
        self.helm, self.mirror, self.releases, self.work = helm, mirror, releases, work
        self.cache: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def crds(self, stack: str, group: str) -> list[dict[str, Any]]:
        provider = next(
            (r for r in self.releases if r.stack == stack and r.name == GROUP_PROVIDERS.get(group)),
            None,
        )
        if provider is None:
            return []
        key = (stack, provider.name)
        if key not in self.cache:
            work = self.work / f"crds-{stack}-{provider.name}"
            work.mkdir()
            chart_dir, _ = prepare_chart(self.mirror, provider.chart, provider.version, work)
            result = render(self.helm, chart_dir, provider, provider.values)
            if result.error:
                raise SystemExit(f"{stack}/{provider.name}: CRDs do not render: {result.error}")
            self.cache[key] = [o for o in result.objects if o["kind"] == "CustomResourceDefinition"]
        return self.cache[key]


def release_schemas(complete: Render, release: Release, crd_source: CrdSource | None) -> Schemas:
    """The schemas of the release's objects: Kubernetes' at the stack's minor version, its own
    CRDs', and those of the charts that define the other custom resources it creates."""
    crds = [o for o in complete.objects if o["kind"] == "CustomResourceDefinition"]
    schemas = Schemas(release.kube_version, crds)
    groups = {
        str(o.get("apiVersion", "")).rpartition("/")[0]
        for o in complete.objects
        if not schemas.known(o)
    }
    for group in sorted(g for g in groups if not BUILT_IN_GROUPS.search(g)):
        if crd_source is not None:
            schemas.add_crds(crd_source.crds(release.stack, group))
    return schemas


def analyse(
    helm: str,
    mirror: Path,
    chart_dir: Path,
    release: Release,
    log: Callable[[str], None],
    crd_source: CrdSource | None = None,
) -> dict[str, Any]:
    renders = Renderer(helm, chart_dir, release)
    # The facts come from the whole render; the comparisons leave out the crds/ directories.
    complete = renders(release.values, schema=True, crds=True)
    if complete.error:
        raise SystemExit(
            f"{release.stack}/{release.name}: our values do not render: {complete.error}"
        )
    schemas = release_schemas(complete, release, crd_source)
    base = renders.view(release.values)
    # A second render of the same values: what differs is generated anew each time.
    noise = changed(
        base.locations,
        view(render(helm, chart_dir, release, release.values, crds=False)).locations,
    )
    facts = render_facts(complete, release)
    found: dict[str, list[str]] = {
        "read": [],
        "read_by_injector": [],
        "unknown_field": [],
        "unread": [],
    }
    passthrough: dict[str, list[str]] = {}
    carriers = []
    candidates: set[ValuePath] = set()
    restricted_ok = not pod_security_findings(facts, release)
    for path, value in leaves(release.values):
        if not path:
            continue
        verdict = classify(renders, schemas, release.values, path, value, noise)
        name = dotted(path)
        if verdict.kind == "passthrough":
            passthrough[name] = list(verdict.landings)
        else:
            found[verdict.kind].append(name)
        if restricted_ok and verdict.kind != "unread" and SECURITY_SEGMENT.search(name):
            candidates.add(item_path(path))
        log(f"  {name}: {verdict.kind} {' '.join(verdict.landings)}".rstrip())
    for path in sorted(candidates, key=dotted):
        without = renders(dropped(release.values, path))
        if not without.error and pod_security_findings(render_facts(without, release), release):
            carriers.append(dotted(path))
    probes = {}
    for probe in PROBES.get(release.name, ()):
        probed = probe_values(release.values, probe)
        result = renders(probed)
        if result.error:
            raise SystemExit(f"{release.stack}/{release.name}: probe {probe.name}: {result.error}")
        verdicts = {
            dotted(path): classify(renders, schemas, probed, path, value, noise)
            for path, value in probe.set
        }
        probe_view = renders.view(probed)
        probes[probe.name] = {
            "set": [[list(path), value] for path, value in probe.set],
            "removed": [list(path) for path in probe.remove],
            "verdicts": {name: v.kind for name, v in verdicts.items()},
            "passthrough": {name: list(v.landings) for name, v in verdicts.items() if v.landings},
            "documents": documents(
                probe_view, sorted({spot for v in verdicts.values() for spot in v.landings})
            ),
            "schema": schema_facts(probe_view, schemas, release.chart),
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
        "read_by_injector": sorted(found["read_by_injector"]),
        "passthrough": dict(sorted(passthrough.items())),
        "unknown_field": sorted(found["unknown_field"]),
        "unread": sorted(found["unread"]),
        "passthrough_documents": documents(
            base, sorted({spot for spots in passthrough.values() for spot in spots})
        ),
        "schema": schema_facts(view(complete), schemas, release.chart),
        "noise": sorted(shown(location) for location in noise),
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


# Istio's MeshConfig, for the tests to check the `meshConfig` the istiod chart copies into its
# `istio` ConfigMap: istiod reads that file ignoring unknown keys (istio 1.30.3
# pkg/config/mesh/mesh.go ApplyMeshConfig -> pkg/util/protomarshal/protomarshal.go ApplyJSON,
# which retries with AllowUnknownFields), so a misspelt key is silently dropped.
MESH_CONFIG_PROTO = "mesh/v1alpha1/config.proto"
MESH_CONFIG = "istio.mesh.v1alpha1.MeshConfig"


def mesh_config_schema(mirror: Path, istio_ref: str) -> dict[str, Any]:
    """MeshConfig's fields from istio/api at the commit istio/istio's go.mod pins at `ref`."""
    go_mod = git(mirror, ISTIO, "show", f"{istio_ref}:go.mod")
    match = re.search(r"^\s*istio\.io/api v\S+-([0-9a-f]{12})\s*$", go_mod, re.MULTILINE)
    if match is None:
        raise SystemExit(f"istio/istio {istio_ref} go.mod: no istio.io/api pseudo-version")
    commit = git(mirror, "istio/api", "rev-parse", f"{match.group(1)}^{{commit}}").strip()

    def read(path: str) -> str:
        return git(mirror, "istio/api", "show", f"{commit}:{path}")

    return {
        "source": {
            "repository": "https://github.com/istio/api",
            "commit": commit,
            "file": MESH_CONFIG_PROTO,
            "pinned_by": f"https://github.com/istio/istio/blob/{istio_ref}/go.mod",
        },
        **proto_schema.schema(read, MESH_CONFIG_PROTO, MESH_CONFIG),
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
            crd_source = CrdSource(args.helm, args.mirror, releases, Path(work))
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
                    crd_source,
                )
        facts: dict[str, Any] = {
            "format": FACTS_FORMAT,
            "chart": chart,
            "version": chart_version,
            "repository": repository,
            "source": source,
            "helm": version,
            "refresh": REFRESH.format(chart=chart),
        }
        if chart == ISTIOD_CHART:
            facts["validators"] = {
                "meshConfig": mesh_config_schema(
                    args.mirror, SOURCES[(chart, chart_version)].chart.ref
                )
            }
        facts["stacks"] = stacks
        path = args.out / f"{chart}-{chart_version}.json"
        path.write_text(json.dumps(facts, indent=1, sort_keys=False) + "\n")
        print(f" -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
