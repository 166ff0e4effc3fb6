#!/usr/bin/env python3
"""Invariants of the rendered Kubernetes manifests that a reviewer cares about
and a schema cannot see. Run by tests/ops/kubernetes.sh on the output of
`kubectl kustomize` for the base and for each overlay:

    check_manifests.py --containerfile deploy/container/Containerfile RENDERED.yaml
    check_manifests.py --containerfile ... --self-test RENDERED.yaml
    (add --pinned-egress for a site's overlay: no egress rule open to any address)

The first form prints one line per check and exits 1 if any failed. The
second breaks each invariant in turn (on a copy in memory) and exits 1 unless
every break is caught by the check meant to catch it: the checks can fail.

Needs PyYAML (in the ops virtual environment) and Python >= 3.11 (tomllib).
"""

from __future__ import annotations

import argparse
import copy
import posixpath
import re
import sys
import tomllib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import yaml

ALLOWED_EGRESS = {("UDP", 53), ("TCP", 53), ("TCP", 443), ("TCP", 5671), ("TCP", 5672), ("TCP", 5432)}
INGRESS_PORTS = {("TCP", 8080)}
SECRET_MODE = 0o400
# *_file keys that are configuration, not secrets: they may come from a ConfigMap.
NON_SECRET_FILE_KEYS = {"outreach.rules_file"}


# --------------------------------------------------------------------------
# helpers


def parse_duration(text: str) -> float:
    """humantime-style durations as `--grace` takes them: 30s, 1m, 1m30s, 500ms."""
    units = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    total, pos = 0.0, 0
    for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)", text):
        if m.start() != pos or m.group(2) not in units:
            raise ValueError(f"not a duration: {text!r}")
        total += float(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"not a duration: {text!r}")
    return total


def flat_keys(table: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in table.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_keys(v, key + "."))
        else:
            out[key] = v
    return out


def image_env(containerfile: str) -> dict[str, str]:
    """ENV of the Containerfile's last stage (the runtime image)."""
    text = open(containerfile, encoding="utf-8").read()
    text = re.sub(r"\\\n", " ", text)
    stages = re.split(r"(?im)^FROM\s", text)
    env: dict[str, str] = {}
    for line in stages[-1].splitlines():
        m = re.match(r"(?i)^\s*ENV\s+(.*)$", line)
        if m:
            for pair in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S+)", m.group(1)):
                env[pair[0]] = pair[1].strip('"')
    return env


def image_files(containerfile: str) -> set[str]:
    """Destination paths of COPY into the runtime stage (files the image holds)."""
    text = re.sub(r"\\\n", " ", open(containerfile, encoding="utf-8").read())
    stage = re.split(r"(?im)^FROM\s", text)[-1]
    dests = set()
    for line in stage.splitlines():
        m = re.match(r"(?i)^\s*COPY\s+(.*)$", line)
        if m:
            dests.add([w for w in m.group(1).split() if not w.startswith("--")][-1])
    return dests


def env_config_keys(env: dict[str, str]) -> dict[str, str]:
    """IPS__SECTION__KEY -> section.key, as the daemon reads its environment."""
    return {k[len("IPS__"):].lower().replace("__", "."): v for k, v in env.items() if k.startswith("IPS__")}


def pod_templates(docs: list[dict]) -> list[tuple[str, dict]]:
    out = []
    for d in docs:
        if d.get("kind") in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
            out.append((f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]))
    return out


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d.get("kind") == kind]


def selects(selector: dict, labels: dict) -> bool:
    match = (selector or {}).get("matchLabels", selector or {})
    return all(labels.get(k) == v for k, v in match.items())


# --------------------------------------------------------------------------
# checks


@dataclass
class Report:
    failures: list[tuple[str, str]] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        if ok:
            self.passed.append(name)
        else:
            self.failures.append((name, detail))


def container_mounts(pod_spec: dict, container: dict) -> list[tuple[str, dict, str | None, dict]]:
    vols = {v["name"]: v for v in pod_spec.get("volumes", [])}
    return [(m["mountPath"], vols.get(m["name"], {}), m.get("subPath"), m) for m in container.get("volumeMounts", [])]


def projected_sources(volume: dict) -> list[tuple[str, dict]]:
    """(kind, source) for a volume: ("secret", {...}), ("configMap", {...})."""
    if "secret" in volume:
        return [("secret", volume["secret"])]
    if "configMap" in volume:
        return [("configMap", volume["configMap"])]
    if "projected" in volume:
        return [(k, s[k]) for s in volume["projected"].get("sources", []) for k in ("secret", "configMap") if k in s]
    return []


def volume_mode(volume: dict) -> int | None:
    for k in ("secret", "configMap", "projected"):
        if k in volume:
            return volume[k].get("defaultMode")
    return None


def file_source(pod_spec: dict, container: dict, path: str) -> tuple[str, str] | None:
    """Where `path` comes from in this container: (kind, detail), or None.
    kind is "secret" or "configMap"; a directory mount must list the file
    among its sources' items (or have sources without items)."""
    for mount_path, volume, sub_path, _ in container_mounts(pod_spec, container):
        sources = projected_sources(volume)
        if not sources:
            continue
        if sub_path is not None:
            if mount_path != path:
                continue
            rel = sub_path
        else:
            if posixpath.dirname(path) != mount_path.rstrip("/"):
                continue
            rel = posixpath.basename(path)
        for kind, src in sources:
            items = src.get("items")
            if items is None or any(i.get("path") == rel for i in items):
                return kind, f"{kind} {src.get('name')} via {mount_path}"
    return None


def check(docs: list[dict], containerfile: str, pinned: bool = False) -> Report:
    r = Report()
    env = image_env(containerfile)
    env_keys = env_config_keys(env)
    baked = image_files(containerfile)

    deployments = by_kind(docs, "Deployment")
    r.check("one Deployment", len(deployments) == 1, f"found {len(deployments)}")
    if len(deployments) != 1:
        return r
    dep = deployments[0]
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    main = spec["containers"][0]
    args = main.get("args", [])

    # replicas
    r.check("replicas == 2", dep["spec"].get("replicas") == 2, f"replicas is {dep['spec'].get('replicas')!r}")

    # grace
    try:
        grace = parse_duration(args[args.index("--grace") + 1])
    except (ValueError, IndexError) as e:
        grace = None
        r.check("--grace in args", False, f"args {args}: {e}")
    tgp = spec.get("terminationGracePeriodSeconds", 30)
    if grace is not None:
        r.check(
            "terminationGracePeriodSeconds > --grace",
            tgp > grace,
            f"terminationGracePeriodSeconds {tgp} is not above --grace {grace:g} s: the kubelet kills the drain",
        )

    # probes
    ports = {p.get("name"): p["containerPort"] for p in main.get("ports", [])}
    listen_port = int(env.get("IPS__HTTP__LISTEN", "127.0.0.1:8080").rsplit(":", 1)[1])

    def probe_target(probe: dict | None) -> tuple[str | None, int | None]:
        if not probe or "httpGet" not in probe:
            return None, None
        port = probe["httpGet"].get("port")
        return probe["httpGet"].get("path"), ports.get(port, port)

    for name, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        probe = main.get(name)
        if probe is None and name == "startupProbe":
            continue
        path, port = probe_target(probe)
        r.check(
            f"{name} GET {want} on {listen_port}",
            path == want and port == listen_port,
            f"{name} is {path!r} on port {port!r}",
        )

    # pod templates: security, service account token, /tmp
    for what, template in pod_templates(docs):
        pspec = template["spec"]
        psc = pspec.get("securityContext", {})
        for c in pspec.get("containers", []) + pspec.get("initContainers", []):
            csc = c.get("securityContext", {})
            eff = {**psc, **csc}
            tag = f"{what} {c['name']}"
            r.check(f"{tag}: runAsNonRoot", eff.get("runAsNonRoot") is True, "runAsNonRoot is not true")
            r.check(
                f"{tag}: numeric non-root runAsUser",
                isinstance(eff.get("runAsUser"), int) and eff["runAsUser"] > 0,
                f"runAsUser {eff.get('runAsUser')!r}",
            )
            r.check(f"{tag}: readOnlyRootFilesystem", csc.get("readOnlyRootFilesystem") is True, "not true")
            r.check(f"{tag}: allowPrivilegeEscalation false", csc.get("allowPrivilegeEscalation") is False, "not false")
            r.check(
                f"{tag}: capabilities drop ALL",
                "ALL" in csc.get("capabilities", {}).get("drop", []) and not csc.get("capabilities", {}).get("add"),
                f"capabilities {csc.get('capabilities')}",
            )
            r.check(
                f"{tag}: seccomp RuntimeDefault",
                eff.get("seccompProfile", {}).get("type") == "RuntimeDefault",
                f"seccompProfile {eff.get('seccompProfile')}",
            )
            tmp = [m for m in container_mounts(pspec, c) if m[0] == "/tmp"]
            r.check(f"{tag}: writable /tmp", bool(tmp) and "emptyDir" in tmp[0][1], "no emptyDir at /tmp (read-only root)")
        r.check(
            f"{what}: no service account token",
            pspec.get("automountServiceAccountToken") is False,
            "automountServiceAccountToken is not false",
        )
        for v in pspec.get("volumes", []):
            if any(k == "secret" for k, _ in projected_sources(v)):
                r.check(
                    f"{what}: secret volume {v['name']} mode 0400",
                    volume_mode(v) == SECRET_MODE,
                    f"defaultMode {oct(volume_mode(v) or 0o644)}",
                )
                r.check(
                    f"{what}: fsGroup lets the user read secret volume {v['name']}",
                    psc.get("fsGroup") is not None,
                    "no fsGroup: 0400 files owned by root are unreadable by a non-root user",
                )

    # resources
    res = main.get("resources", {})
    r.check(
        "requests and memory limit set",
        all(res.get("requests", {}).get(k) for k in ("cpu", "memory")) and res.get("limits", {}).get("memory"),
        f"resources {res}",
    )

    # spread over nodes
    spread = [t for t in spec.get("topologySpreadConstraints", []) if t.get("topologyKey") == "kubernetes.io/hostname"]
    anti = spec.get("affinity", {}).get("podAntiAffinity")
    r.check("replicas spread over nodes", bool(spread or anti), "no hostname topologySpreadConstraint or podAntiAffinity")

    # configuration: the --config file, its TOML, *_file keys
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    r.check("--config in args", config_path is not None, f"args {args}")
    site: dict = {}
    cm_name = None
    for mount_path, volume, sub_path, _ in container_mounts(spec, main):
        if mount_path == config_path and "configMap" in volume:
            cm_name, key = volume["configMap"]["name"], sub_path
            cms = [d for d in by_kind(docs, "ConfigMap") if d["metadata"]["name"] == cm_name]
            if cms and key in cms[0].get("data", {}):
                try:
                    site = tomllib.loads(cms[0]["data"][key])
                except tomllib.TOMLDecodeError as e:
                    r.check("site TOML parses", False, str(e))
    r.check("site TOML from a ConfigMap at --config", bool(site), f"nothing usable mounted at {config_path}")
    keys = flat_keys(site)

    url = str(keys.get("store.url", ""))
    parsed = urlsplit(url)
    r.check("store.url is postgres://", parsed.scheme in ("postgres", "postgresql"), f"store.url is {url!r}")
    r.check("no password in store.url", parsed.password is None, "store.url carries a password: use store.password_file")

    clash = sorted(set(keys) & set(env_keys))
    r.check(
        "site TOML sets nothing the image's ENV overrides",
        not clash,
        f"{clash} are set by the image's IPS__ environment, which wins over --config",
    )

    # every file the configuration names, in every container that loads it
    wanted: dict[str, str] = {}
    for k, v in keys.items():
        if k.endswith("_file") and isinstance(v, str) and v:
            wanted[k] = v
    for k, v in env_keys.items():
        if k.endswith("_file") and v and k not in wanted:
            wanted[k] = v
    for p in parse_qs(parsed.query).get("sslrootcert", []):
        wanted["store.url sslrootcert"] = p
    loaders = [
        (what, t["spec"], c)
        for what, t in pod_templates(docs)
        for c in t["spec"]["containers"]
        if config_path and config_path in c.get("args", [])
    ]
    r.check("the migrate Job loads the same --config", any(w.startswith("Job/") for w, _, _ in loaders), "no Job with --config")
    for what, pspec, c in loaders:
        r.check(f"{what}: --config mounted", file_source(pspec, c, config_path) is not None, f"{config_path} not mounted")
        for key, path in sorted(wanted.items()):
            src = file_source(pspec, c, path)
            if key in NON_SECRET_FILE_KEYS:
                ok = src is not None or path in baked
                detail = f"{path} is neither mounted nor in the image"
            else:
                ok = src is not None and src[0] == "secret"
                detail = f"{path} comes from {src[1] if src else 'nowhere'}: every secret file must come from a Secret"
            r.check(f"{what}: {key} = {path} mounted", ok, detail)

    # Service, PodDisruptionBudget
    labels = pod["metadata"]["labels"]
    svcs = by_kind(docs, "Service")
    r.check(
        "Service http 8080 selects the daemon",
        len(svcs) == 1
        and selects(svcs[0]["spec"]["selector"], labels)
        and any(p.get("name") == "http" and p["port"] == 8080 for p in svcs[0]["spec"]["ports"]),
        f"services {[s['metadata']['name'] for s in svcs]}",
    )
    jobs = [t for w, t in pod_templates(docs) if w.startswith("Job/")]
    r.check(
        "Service does not select the migrate Job",
        all(not selects(s["spec"]["selector"], t["metadata"]["labels"]) for s in svcs for t in jobs),
        "a Service selector matches the Job's pods",
    )
    pdbs = by_kind(docs, "PodDisruptionBudget")
    r.check(
        "PodDisruptionBudget minAvailable 1 on the daemon",
        len(pdbs) == 1 and pdbs[0]["spec"].get("minAvailable") == 1 and selects(pdbs[0]["spec"]["selector"], labels),
        f"pdbs {[p.get('spec') for p in pdbs]}",
    )

    # NetworkPolicy
    nps = by_kind(docs, "NetworkPolicy")
    r.check("one NetworkPolicy", len(nps) == 1, f"found {len(nps)}")
    if nps:
        np = nps[0]["spec"]
        for what, t in pod_templates(docs):
            r.check(f"NetworkPolicy covers {what}", selects(np["podSelector"], t["metadata"]["labels"]), "not selected")
        r.check(
            "NetworkPolicy restricts both ways",
            set(np.get("policyTypes", [])) == {"Ingress", "Egress"},
            f"policyTypes {np.get('policyTypes')}",
        )

        def port_set(rule: dict) -> set[tuple[str, int]]:
            return {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports", [])}

        ingress_ok = all(rule.get("ports") and port_set(rule) <= INGRESS_PORTS and rule.get("from") for rule in np.get("ingress", []))
        r.check("ingress only to TCP 8080, from listed peers", ingress_ok, f"ingress {np.get('ingress')}")
        egress = np.get("egress", [])
        bad = [rule for rule in egress if not rule.get("ports") or not port_set(rule) <= ALLOWED_EGRESS]
        r.check(
            "egress only to DNS, 443, 5671/5672, 5432",
            not bad,
            f"rules outside {sorted(ALLOWED_EGRESS)} or without ports: {bad}",
        )
        if pinned:
            r.check(
                "egress rules name their destinations (a site's overlay)",
                all(rule.get("to") for rule in egress),
                f"rules open to any address: {[port_set(rule) for rule in egress if not rule.get('to')]}",
            )
        r.check(
            "egress allows DNS over UDP and TCP",
            any({("UDP", 53), ("TCP", 53)} <= port_set(rule) for rule in egress),
            "no rule with 53/UDP and 53/TCP: no host name would resolve",
        )
        needed = {("TCP", 443): "FHIR/MESH", ("TCP", 5432): "PostgreSQL"}
        for port, what in needed.items():
            r.check(f"egress allows {what} {port[1]}", any(port in port_set(rule) for rule in egress), "missing")
        r.check(
            "egress allows RabbitMQ 5671 or 5672",
            any(port_set(rule) & {("TCP", 5671), ("TCP", 5672)} for rule in egress),
            "missing",
        )

    # ServiceAccount
    sas = by_kind(docs, "ServiceAccount")
    r.check(
        "ServiceAccount automountServiceAccountToken false",
        len(sas) == 1 and sas[0].get("automountServiceAccountToken") is False,
        f"service accounts {sas}",
    )
    r.check(
        "pods run as that ServiceAccount",
        all(t["spec"].get("serviceAccountName") == sas[0]["metadata"]["name"] for _, t in pod_templates(docs)) if sas else False,
        "serviceAccountName differs",
    )
    return r


# --------------------------------------------------------------------------
# self-test: each break must be caught by the check named beside it


def _dep(docs):
    return by_kind(docs, "Deployment")[0]


def _main(docs):
    return _dep(docs)["spec"]["template"]["spec"]["containers"][0]


def _job(docs):
    return by_kind(docs, "Job")[0]["spec"]["template"]["spec"]


def _site_cm(docs):
    return [d for d in by_kind(docs, "ConfigMap") if "ips-bridge.toml" in d.get("data", {})][0]


def _set_toml(docs, old, new):
    cm = _site_cm(docs)
    text = cm["data"]["ips-bridge.toml"]
    assert re.search(old, text, re.M), f"self-test: {old!r} not in the site TOML"
    cm["data"]["ips-bridge.toml"] = re.sub(old, new, text, count=1, flags=re.M)


def _drop_mount(docs, path):
    c = _main(docs)
    c["volumeMounts"] = [m for m in c["volumeMounts"] if m["mountPath"] != path]


def _first_secret_item(docs):
    for v in _dep(docs)["spec"]["template"]["spec"]["volumes"]:
        for kind, src in projected_sources(v):
            if kind == "secret" and src.get("items"):
                return src
    raise AssertionError("self-test: no secret items")


BREAKS = [
    ("terminationGracePeriodSeconds <= --grace", "terminationGracePeriodSeconds > --grace",
     lambda d: _dep(d)["spec"]["template"]["spec"].__setitem__("terminationGracePeriodSeconds", 30)),
    ("--grace longer than the kill", "terminationGracePeriodSeconds > --grace",
     lambda d: _main(d)["args"].__setitem__(_main(d)["args"].index("--grace") + 1, "1m")),
    ("liveness on /readyz", "livenessProbe GET /healthz",
     lambda d: _main(d)["livenessProbe"]["httpGet"].__setitem__("path", "/readyz")),
    ("readiness on /healthz", "readinessProbe GET /readyz",
     lambda d: _main(d)["readinessProbe"]["httpGet"].__setitem__("path", "/healthz")),
    ("readiness on another port", "readinessProbe GET /readyz",
     lambda d: _main(d)["readinessProbe"]["httpGet"].__setitem__("port", 9090)),
    ("runAsNonRoot false", "runAsNonRoot",
     lambda d: _main(d)["securityContext"].__setitem__("runAsNonRoot", False)),
    ("runAsUser 0", "numeric non-root runAsUser",
     lambda d: _main(d)["securityContext"].__setitem__("runAsUser", 0)),
    ("writable root filesystem", "readOnlyRootFilesystem",
     lambda d: _main(d)["securityContext"].__setitem__("readOnlyRootFilesystem", False)),
    ("Job writable root filesystem", "Job/ips-bridge-migrate migrate: readOnlyRootFilesystem",
     lambda d: _job(d)["containers"][0]["securityContext"].pop("readOnlyRootFilesystem")),
    ("privilege escalation", "allowPrivilegeEscalation false",
     lambda d: _main(d)["securityContext"].__setitem__("allowPrivilegeEscalation", True)),
    ("a capability kept", "capabilities drop ALL",
     lambda d: _main(d)["securityContext"]["capabilities"].__setitem__("add", ["NET_ADMIN"])),
    ("no seccomp", "seccomp RuntimeDefault",
     lambda d: (_main(d)["securityContext"].pop("seccompProfile"),
                _dep(d)["spec"]["template"]["spec"]["securityContext"].pop("seccompProfile"))),
    ("no /tmp", "writable /tmp", lambda d: _drop_mount(d, "/tmp")),
    ("token mounted", "no service account token",
     lambda d: _dep(d)["spec"]["template"]["spec"].__setitem__("automountServiceAccountToken", True)),
    ("replicas 1", "replicas == 2", lambda d: _dep(d)["spec"].__setitem__("replicas", 1)),
    ("store on SQLite", "store.url is postgres://",
     lambda d: _set_toml(d, r'^url = "postgres://[^"]*"', 'url = "sqlite:///var/lib/ips-bridge/ips-bridge.db"')),
    ("password in store.url", "no password in store.url",
     lambda d: _set_toml(d, r"postgres://ips_bridge@", "postgres://ips_bridge:hunter2@")),
    ("a *_file not mounted", "patient_key_file",
     lambda d: _set_toml(d, r"/etc/ips-bridge/secrets/patient-key", "/var/lib/ips-bridge/patient-key")),
    ("a secret item missing", "mounted",
     lambda d: _first_secret_item(d).__setitem__("items", _first_secret_item(d)["items"][1:])),
    ("secrets mount dropped", "mounted", lambda d: _drop_mount(d, "/etc/ips-bridge/secrets")),
    ("a secret from the ConfigMap", "api_token_file",
     lambda d: _set_toml(d, r"/etc/ips-bridge/secrets/api-token", "/etc/ips-bridge/discharge-rules.toml")),
    ("secret mode 0444", "mode 0400",
     lambda d: [v["projected"].__setitem__("defaultMode", 0o444)
                for v in _dep(d)["spec"]["template"]["spec"]["volumes"] if "projected" in v]),
    ("no fsGroup", "fsGroup lets the user read",
     lambda d: _dep(d)["spec"]["template"]["spec"]["securityContext"].pop("fsGroup")),
    ("TOML sets an image ENV key", "site TOML sets nothing the image's ENV overrides",
     lambda d: _set_toml(d, r"^\[http\]$", '[http]\nlisten = "0.0.0.0:9000"')),
    ("egress to any port", "egress only to DNS",
     lambda d: by_kind(d, "NetworkPolicy")[0]["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})),
    ("egress to SSH", "egress only to DNS",
     lambda d: by_kind(d, "NetworkPolicy")[0]["spec"]["egress"].append({"ports": [{"protocol": "TCP", "port": 22}]})),
    ("no DNS", "egress allows DNS",
     lambda d: by_kind(d, "NetworkPolicy")[0]["spec"].__setitem__(
         "egress", [r for r in by_kind(d, "NetworkPolicy")[0]["spec"]["egress"]
                    if 53 not in [p.get("port") for p in r.get("ports", [])]])),
    ("egress to any address on 443", "egress rules name their destinations",
     lambda d: [rule.pop("to", None) for rule in by_kind(d, "NetworkPolicy")[0]["spec"]["egress"]
                if {"protocol": "TCP", "port": 443} in rule.get("ports", [])]),
    ("ingress on another port", "ingress only to TCP 8080",
     lambda d: by_kind(d, "NetworkPolicy")[0]["spec"]["ingress"][0]["ports"].append({"protocol": "TCP", "port": 22})),
    ("no spread", "replicas spread over nodes",
     lambda d: _dep(d)["spec"]["template"]["spec"].pop("topologySpreadConstraints")),
    ("PDB minAvailable 0", "PodDisruptionBudget minAvailable 1",
     lambda d: by_kind(d, "PodDisruptionBudget")[0]["spec"].__setitem__("minAvailable", 0)),
    ("Job without the secrets", "Job/ips-bridge-migrate",
     lambda d: _job(d)["containers"][0].__setitem__(
         "volumeMounts", [m for m in _job(d)["containers"][0]["volumeMounts"] if m["mountPath"] != "/etc/ips-bridge/secrets"])),
]


def self_test(docs: list[dict], containerfile: str, pinned: bool) -> int:
    base = check(docs, containerfile, pinned)
    if base.failures:
        print("self-test needs manifests that pass; they do not:")
        for name, detail in base.failures:
            print(f"  FAIL {name}: {detail}")
        return 1
    missed = 0
    breaks = [b for b in BREAKS if pinned or "destinations" not in b[1]]
    for what, expect, breaker in breaks:
        broken = copy.deepcopy(docs)
        breaker(broken)
        caught = [n for n, _ in check(broken, containerfile, pinned).failures]
        hit = [n for n in caught if expect in n]
        if hit:
            print(f"  caught  {what:<40} -> {hit[0]}")
        else:
            missed += 1
            print(f"  MISSED  {what:<40} (expected a failure of '{expect}', got {caught or 'none'})")
    print(f"self-test: {len(breaks) - missed} of {len(breaks)} breaks caught")
    return 1 if missed else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--containerfile", required=True)
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--pinned-egress", action="store_true", help="a site's overlay: every egress rule names its destinations")
    ap.add_argument("rendered")
    a = ap.parse_args()
    with open(a.rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if a.self_test:
        return self_test(docs, a.containerfile, a.pinned_egress)
    r = check(docs, a.containerfile, a.pinned_egress)
    for name in r.passed:
        print(f"  ok    {name}")
    for name, detail in r.failures:
        print(f"  FAIL  {name}: {detail}")
    print(f"{len(r.passed)} passed, {len(r.failures)} failed")
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main())
