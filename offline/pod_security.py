"""Pod Security admission's `baseline` and `restricted` levels, evaluated on a pod spec offline.

The checks are those of kubernetes/pod-security-admission `policy/check_*.go` at v0.33.9 (the
Kubernetes 1.33 admission plugin), for Linux pods without user namespaces (`hostUsers` unset):
each function below names the check it follows. `restricted` includes every `baseline` check,
except where a restricted check overrides one (capabilities, seccomp, volume types). A
violation is one line naming the check and what fails it, as the admission message would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

Level = Literal["privileged", "baseline", "restricted"]
Pod = Mapping[str, Any]

# check_capabilities_baseline.go: capabilities_allowed_1_0.
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
# check_sysctls.go: sysctlsAllowedV1Dot32 (1.32 onwards).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
    }
)
# check_restrictedVolumes.go: the only volume sources a restricted pod may use.
RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
# check_seLinuxOptions.go: selinuxAllowedTypes1_31.
SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def containers(pod: Pod) -> Iterator[Mapping[str, Any]]:
    """visitContainers: init, regular and ephemeral containers."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from pod.get(key) or []


def _context(container: Mapping[str, Any]) -> Mapping[str, Any]:
    return container.get("securityContext") or {}


def _pod_context(pod: Pod) -> Mapping[str, Any]:
    return pod.get("securityContext") or {}


def host_namespaces(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_hostNamespaces.go."""
    return [f"{key}=true" for key in ("hostNetwork", "hostPID", "hostIPC") if pod.get(key)]


def privileged(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_privileged.go."""
    return [f"{c['name']}: privileged" for c in containers(pod) if _context(c).get("privileged")]


def capabilities_baseline(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_capabilities_baseline.go."""
    found = []
    for c in containers(pod):
        added = (_context(c).get("capabilities") or {}).get("add") or []
        extra = sorted(set(added) - BASELINE_CAPABILITIES)
        if extra:
            found.append(f"{c['name']}: adds {extra}")
    return found


def host_path_volumes(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_hostPathVolumes.go."""
    return [f"volume {v['name']}: hostPath" for v in pod.get("volumes") or [] if "hostPath" in v]


def host_ports(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_hostPorts.go."""
    return [
        f"{c['name']}: hostPort {p['hostPort']}"
        for c in containers(pod)
        for p in c.get("ports") or []
        if p.get("hostPort")
    ]


def apparmor(pod: Pod, annotations: Mapping[str, str]) -> list[str]:
    """check_appArmorProfile.go: a profile type other than RuntimeDefault or Localhost; the
    beta annotation with a value other than runtime/default or localhost/*."""
    found = []
    profile = _pod_context(pod).get("appArmorProfile")
    if profile is not None and profile.get("type") not in APPARMOR_TYPES:
        found.append(f"pod: appArmorProfile {profile.get('type')}")
    for c in containers(pod):
        profile = _context(c).get("appArmorProfile")
        if profile is not None and profile.get("type") not in APPARMOR_TYPES:
            found.append(f"{c['name']}: appArmorProfile {profile.get('type')}")
    for key, value in annotations.items():
        if key.startswith("container.apparmor.security.beta.kubernetes.io/") and not (
            value in ("", "runtime/default") or value.startswith("localhost/")
        ):
            found.append(f"annotation {key}={value}")
    return found


def selinux(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_seLinuxOptions.go (1.31 onwards)."""

    def bad(options: Mapping[str, Any] | None) -> bool:
        if options is None:
            return False
        return (
            options.get("type", "") not in SELINUX_TYPES
            or bool(options.get("user"))
            or bool(options.get("role"))
        )

    found = ["pod: seLinuxOptions"] if bad(_pod_context(pod).get("seLinuxOptions")) else []
    found += [
        f"{c['name']}: seLinuxOptions"
        for c in containers(pod)
        if bad(_context(c).get("seLinuxOptions"))
    ]
    return found


def proc_mount(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_procMount.go."""
    return [
        f"{c['name']}: procMount {_context(c)['procMount']}"
        for c in containers(pod)
        if _context(c).get("procMount") not in (None, "Default")
    ]


def seccomp_baseline(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_seccompProfile_baseline.go (1.19 onwards): an explicit Unconfined profile."""
    found = []
    profile = _pod_context(pod).get("seccompProfile")
    if profile is not None and profile.get("type") not in SECCOMP_TYPES:
        found.append(f"pod: seccompProfile {profile.get('type')}")
    for c in containers(pod):
        profile = _context(c).get("seccompProfile")
        if profile is not None and profile.get("type") not in SECCOMP_TYPES:
            found.append(f"{c['name']}: seccompProfile {profile.get('type')}")
    return found


def sysctls(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_sysctls.go (1.32 onwards)."""
    return [
        f"sysctl {s['name']}"
        for s in _pod_context(pod).get("sysctls") or []
        if s["name"] not in SAFE_SYSCTLS
    ]


def windows_host_process(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_windowsHostProcess.go."""
    found = (
        ["pod: hostProcess"]
        if ((_pod_context(pod).get("windowsOptions") or {}).get("hostProcess"))
        else []
    )
    found += [
        f"{c['name']}: hostProcess"
        for c in containers(pod)
        if (_context(c).get("windowsOptions") or {}).get("hostProcess")
    ]
    return found


def restricted_volumes(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_restrictedVolumes.go (overrides hostPathVolumes)."""
    found = []
    for volume in pod.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources <= RESTRICTED_VOLUME_SOURCES:
            found.append(f"volume {volume['name']}: {sorted(sources)}")
    return found


def allow_privilege_escalation(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_allowPrivilegeEscalation.go: must be set, and false."""
    return [
        f"{c['name']}: allowPrivilegeEscalation != false"
        for c in containers(pod)
        if _context(c).get("allowPrivilegeEscalation") is not False
    ]


def run_as_non_root(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_runAsNonRoot.go: the pod or every container sets runAsNonRoot=true, none false."""
    pod_value = _pod_context(pod).get("runAsNonRoot")
    found = ["pod: runAsNonRoot=false"] if pod_value is False else []
    for c in containers(pod):
        value = _context(c).get("runAsNonRoot")
        if value is False:
            found.append(f"{c['name']}: runAsNonRoot=false")
        elif value is None and pod_value is not True:
            found.append(f"{c['name']}: runAsNonRoot unset (pod's too)")
    return found


def run_as_user(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_runAsUser.go: no runAsUser=0."""
    found = ["pod: runAsUser=0"] if _pod_context(pod).get("runAsUser") == 0 else []
    found += [
        f"{c['name']}: runAsUser=0" for c in containers(pod) if _context(c).get("runAsUser") == 0
    ]
    return found


def seccomp_restricted(pod: Pod, annotations: Mapping[str, str]) -> list[str]:
    """check_seccompProfile_restricted.go (overrides the baseline seccomp check): the pod or
    every container sets RuntimeDefault or Localhost."""
    found = seccomp_baseline(pod, annotations)
    if _pod_context(pod).get("seccompProfile") is None:
        found += [
            f"{c['name']}: seccompProfile unset (pod's too)"
            for c in containers(pod)
            if _context(c).get("seccompProfile") is None
        ]
    return found


def capabilities_restricted(pod: Pod, _: Mapping[str, str]) -> list[str]:
    """check_capabilities_restricted.go (overrides the baseline capabilities check): drop ALL,
    add nothing but NET_BIND_SERVICE."""
    found = []
    for c in containers(pod):
        capabilities = _context(c).get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{c['name']}: does not drop ALL capabilities")
        extra = sorted(set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"})
        if extra:
            found.append(f"{c['name']}: adds {extra}")
    return found


Check = Callable[[Pod, Mapping[str, str]], list[str]]
BASELINE: dict[str, Check] = {
    "hostNamespaces": host_namespaces,
    "privileged": privileged,
    "capabilities_baseline": capabilities_baseline,
    "hostPathVolumes": host_path_volumes,
    "hostPorts": host_ports,
    "appArmorProfile": apparmor,
    "seLinuxOptions": selinux,
    "procMount": proc_mount,
    "seccompProfile_baseline": seccomp_baseline,
    "sysctls": sysctls,
    "windowsHostProcess": windows_host_process,
}
# Each restricted check with the baseline check it replaces (OverrideCheckIDs).
RESTRICTED: dict[str, tuple[Check, str | None]] = {
    "restrictedVolumes": (restricted_volumes, "hostPathVolumes"),
    "allowPrivilegeEscalation": (allow_privilege_escalation, None),
    "runAsNonRoot": (run_as_non_root, None),
    "runAsUser": (run_as_user, None),
    "seccompProfile_restricted": (seccomp_restricted, "seccompProfile_baseline"),
    "capabilities_restricted": (capabilities_restricted, "capabilities_baseline"),
}


def violations(pod: Pod, level: Level, annotations: Mapping[str, str] | None = None) -> list[str]:
    """What Pod Security admission at `level` refuses in this pod spec, one line per finding."""
    if level == "privileged":
        return []
    checks = dict(BASELINE)
    if level == "restricted":
        for name, (check, overrides) in RESTRICTED.items():
            if overrides is not None:
                del checks[overrides]
            checks[name] = check
    return [
        f"{name}: {finding}"
        for name, check in checks.items()
        for finding in check(pod, annotations or {})
    ]
