#!/usr/bin/env python3
"""Checks of deploy/container/Containerfile and .dockerignore that hadolint
does not make, run by tests/ops/container.sh:

  - .dockerignore excludes target/ (gigabytes), .git/ and node_modules/, and
    excludes nothing the Containerfile copies from the build context (each
    COPY source exists and every git-tracked file under it is sent);
  - the runtime stage runs as a numeric non-root USER, EXPOSEs 8080, listens
    on 0.0.0.0:8080, has a HEALTHCHECK, and its default command is
    `run --grace <d>`;
  - every IPS__*_FILE the image's environment names is a file the image holds.

    check_container.py [--repo DIR]   (default: this repository)

Prints one line per check; exits 1 if any failed. Its own rules for
.dockerignore follow Docker's: patterns relative to the context, `*` within
a path segment, `**` across segments, `!` re-includes, the last match wins,
and a path is excluded when it or a folder above it is.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path


def ignore_rules(text: str) -> list[tuple[bool, re.Pattern]]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pat = line[1:] if negate else line
        pat = pat.strip().lstrip("/").rstrip("/")
        rx = ""
        i = 0
        while i < len(pat):
            if pat.startswith("**/", i):
                rx += "(?:.*/)?"
                i += 3
            elif pat.startswith("**", i):
                rx += ".*"
                i += 2
            elif pat[i] == "*":
                rx += "[^/]*"
                i += 1
            elif pat[i] == "?":
                rx += "[^/]"
                i += 1
            else:
                rx += re.escape(pat[i])
                i += 1
        rules.append((negate, re.compile(rx + r"\Z")))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """As moby's patternmatcher.MatchesOrParentMatches: each rule that matches
    the path or a folder above it decides, the last one wins."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for negate, rx in rules:
        if any(rx.match(p) for p in prefixes):
            result = not negate
    return result


def logical_lines(text: str) -> list[str]:
    return [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(Path(__file__).resolve().parents[2]))
    ap.add_argument("--containerfile", default="deploy/container/Containerfile")
    a = ap.parse_args()
    repo = Path(a.repo)
    failures: list[str] = []
    passed = 0

    def check(name: str, ok: bool, detail: str) -> None:
        nonlocal passed
        if ok:
            passed += 1
            print(f"  ok    {name}")
        else:
            failures.append(name)
            print(f"  FAIL  {name}: {detail}")

    ignore_file = repo / ".dockerignore"
    check(".dockerignore exists", ignore_file.is_file(), f"{ignore_file} missing")
    rules = ignore_rules(ignore_file.read_text()) if ignore_file.is_file() else []
    for path in ("target", "target/debug/ips-bridge", "target/release/ips-bridge", ".git/HEAD",
                 "deploy/local/web-assets/node_modules/nhsuk-frontend/package.json",
                 "deploy/local/.demo/ips-bridge.db", "tests/fuzz/target/x", "tests/fuzz/artifacts/x"):
        check(f".dockerignore excludes {path}", excluded(path, rules), "it would be sent to the builder")

    lines = logical_lines((repo / a.containerfile).read_text())
    tracked = subprocess.run(["git", "-C", str(repo), "ls-files"], capture_output=True, text=True).stdout.split()
    untracked_ok = {"deploy/container/healthcheck.rs"}  # may be new in a working tree
    for line in lines:
        m = re.match(r"(?i)^COPY\s+(.*)$", line)
        if not m or "--from=" in m.group(1):
            continue
        words = [w for w in m.group(1).split() if not w.startswith("--")]
        for src in words[:-1]:
            src = src.rstrip("/")
            exists = (repo / src).exists()
            check(f"COPY source {src} exists", exists, "no such path in the repository")
            under = [f for f in tracked if f == src or f.startswith(src + "/")] or ([src] if src in untracked_ok else [])
            lost = [f for f in under if excluded(f, rules)]
            check(f"COPY source {src} not excluded by .dockerignore", exists and not lost,
                  f"excluded: {lost[:5]}" if lost else "nothing to send")

    stages = [i for i, l in enumerate(lines) if re.match(r"(?i)^FROM\s", l)]
    final = lines[stages[-1]:] if stages else []
    users = [l.split(None, 1)[1] for l in final if re.match(r"(?i)^USER\s", l)]
    user = users[-1] if users else ""
    check("runtime USER numeric and non-root", bool(re.fullmatch(r"[1-9]\d*(:\d+)?", user)), f"USER {user!r}")
    check("EXPOSE 8080", any(re.match(r"(?i)^EXPOSE\s+8080(/tcp)?$", l) for l in final), "no EXPOSE 8080")
    env_text = " ".join(l for l in final if re.match(r"(?i)^ENV\s", l))
    env = dict(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", env_text))
    check("listens on 0.0.0.0:8080", env.get("IPS__HTTP__LISTEN") == "0.0.0.0:8080",
          f"IPS__HTTP__LISTEN is {env.get('IPS__HTTP__LISTEN')!r} (the daemon's default is loopback)")
    check(
        "HEALTHCHECK probes /healthz",
        any(re.match(r"(?i)^HEALTHCHECK\s.*CMD.*(ips-bridge-healthcheck|/healthz)", l) for l in final),
        "no HEALTHCHECK running ips-bridge-healthcheck (GET /healthz)",
    )
    entry = [l for l in final if re.match(r"(?i)^(ENTRYPOINT|CMD)\s", l)]
    words = []
    for l in entry:
        body = l.split(None, 1)[1]
        words += json.loads(body) if body.startswith("[") else body.split()
    check("default command is run --grace", "run" in words and "--grace" in words, f"ENTRYPOINT/CMD {words}")
    copied = set()
    for l in final:
        m = re.match(r"(?i)^COPY\s+(.*)$", l)
        if m:
            copied.add([w for w in m.group(1).split() if not w.startswith("--")][-1])
    for k, v in env.items():
        if k.startswith("IPS__") and k.endswith("_FILE"):
            check(f"{k} is a file the image holds", v in copied, f"{v} is not COPY'd into the runtime stage")

    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
