#!/usr/bin/env python3
"""Runs `ips-bridge check-config` on the site configuration of rendered
Kubernetes manifests, as the container would see it: the TOML from the
ConfigMap mounted at --config, the image's IPS__ environment (from the
Containerfile), nothing else from the caller's environment. So a misspelled
key, a bad value or a missing secret file in a site TOML fails here, not in
a crash-looping pod.

    site_config.py --containerfile deploy/container/Containerfile \
                   --binary PATH/ips-bridge --workdir DIR RENDERED.yaml

Paths under /etc/ips-bridge/ are moved under DIR; every file the
configuration names is created there with a stand-in of the right shape (a
PEM block where a PEM is read, a 64-character patient key, a real key pair
for fhir.auth.key_file, which is test-signed at load). Exits with
check-config's status.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_manifests import by_kind, container_mounts, env_config_keys, flat_keys, image_env  # noqa: E402

CERT = "-----BEGIN CERTIFICATE-----\nMIIBstand+in\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIBstand+in\n-----END PRIVATE KEY-----\n"


def stand_in(key: str, path: Path, site: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if key == "fhir.auth.key_file":
        if site.get("fhir.auth.algorithm") == "ES384":
            gen = "openssl ecparam -name secp384r1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt"
        else:
            gen = "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048"
        path.write_bytes(subprocess.run(gen, shell=True, check=True, capture_output=True).stdout)
    elif key == "store.patient_key_file":
        path.write_text("0123456789abcdef" * 4 + "\n")
    elif key == "amqp.url_file":
        path.write_text("amqps://ips-bridge:stand-in@rabbitmq:5671/%2f\n")
    elif path.name.endswith((".crt", "-ca.pem")) or key.endswith(("cert_file", "ca_file", "sslrootcert")):
        path.write_text(CERT)
    elif path.name.endswith((".key", ".pem")) or key.endswith("key_file"):
        path.write_text(KEY)
    else:
        path.write_text("stand-in-secret-0123456789abcdef\n")
    path.chmod(0o400)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containerfile", required=True)
    ap.add_argument("--binary", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("rendered")
    a = ap.parse_args()
    docs = [d for d in yaml.safe_load_all(open(a.rendered, encoding="utf-8")) if d]
    work = Path(a.workdir)
    remap = lambda p: str(work) + p if p.startswith("/etc/ips-bridge/") else p  # noqa: E731

    dep = by_kind(docs, "Deployment")[0]
    spec = dep["spec"]["template"]["spec"]
    main_c = spec["containers"][0]
    args = main_c["args"]
    config_path = args[args.index("--config") + 1]
    configmaps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind(docs, "ConfigMap")}

    # The ConfigMap files as mounted (subPath files), moved under workdir.
    for mount_path, volume, sub_path, _ in container_mounts(spec, main_c):
        if "configMap" in volume and sub_path is not None:
            data = configmaps[volume["configMap"]["name"]][sub_path]
            target = Path(remap(mount_path))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data.replace("/etc/ips-bridge/", f"{work}/etc/ips-bridge/"))
    site_file = Path(remap(config_path))
    site = flat_keys(tomllib.loads(site_file.read_text()))

    env = image_env(a.containerfile)
    for k, v in env.items():
        env[k] = remap(v)
    repo = Path(__file__).resolve().parents[2]
    assets = repo / "deploy/local/web-assets/node_modules/nhsuk-frontend/dist/nhsuk"
    if "IPS__WEB__ASSETS_DIR" in env:
        env["IPS__WEB__ASSETS_DIR"] = str(assets)

    wanted = {k: v for k, v in site.items() if k.endswith("_file") and isinstance(v, str) and v}
    for k, v in env_config_keys(env).items():
        if k.endswith("_file") and v:
            wanted.setdefault(k, v)
    for p in parse_qs(urlsplit(str(site.get("store.url", ""))).query).get("sslrootcert", []):
        wanted["store.url sslrootcert"] = p
    for key, path in wanted.items():
        p = Path(path)
        if not p.exists() and str(p).startswith(str(work)):
            stand_in(key, p, site)

    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), **env}
    proc = subprocess.run(
        [str(Path(a.binary).resolve()), "--config", str(site_file), "check-config"],
        env=run_env,
        cwd=work,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(proc.stderr.replace(str(work), ""), end="")
    else:
        print(f"  ok    check-config accepts {config_path} with the image's environment")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
