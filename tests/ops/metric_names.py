#!/usr/bin/env python3
"""Checks that dashboards and alert rules name only metrics a daemon exports.

    metric_names.py EXPOSITION FILE...    EXPOSITION: a Prometheus text exposition
                                          (a path, or - for stdin); FILE: a Grafana
                                          dashboard (.json) or a rule file (.yml)
    metric_names.py --list FILE...        print the metric names FILE(s) use
    metric_names.py --synthetic           print an exposition with every metric the
                                          bridge is meant to export (for trying
                                          the checker without a daemon)
    metric_names.py --self-test           check the checker (it must fail on a
                                          misspelt name)

It reads every PromQL expression (dashboard `targets[].expr` and query variables,
rule `expr`), strips string literals, label matchers, range and subquery
selectors, `by`/`without`/`on`/`ignoring`/`group_*` clauses, Grafana variables
(`$__rate_interval`, `${job}`, `[[x]]`), functions and keywords, and keeps the
metric names. Each must be in the exposition, which lists `# TYPE name kind`
lines and samples. Histograms and summaries are checked by their kind:
`x_bucket` needs `x` to be a histogram, `x_sum`/`x_count` a histogram or a
summary, and bare `x` a summary (a histogram has no series named `x`). The
exporter the bridge uses (metrics-exporter-prometheus) writes a histogram as a
summary unless buckets are configured for it, so this matters.

Prometheus's own `up` and blackbox_exporter's `probe_*` series are not the
daemon's and are skipped. Exit status: 0 when every name is exported, 1 when
any is missing (each listed with where it is used), 2 on bad input.
Standard library only; PyYAML is used when present, else a small reader of
`expr:` lines.
"""

import json
import os
import re
import sys
import tempfile

# Not exported by the daemon: Prometheus's scrape health and blackbox_exporter's probes.
IGNORED = re.compile(r"^(up|probe_[a-z_]+|scrape_[a-z_]+)$")

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
    "group_right", "offset", "bool", "inf", "nan", "start", "end",
}

SUFFIXES = ("_bucket", "_sum", "_count")


# --- PromQL ----------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"((?:[^"\\]|\\.)*)"')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\]")
_BRACES = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.I)
_IDENT = re.compile(r"(?<![\w.:$@])([A-Za-z_:][A-Za-z0-9_:]*)")


def names_in(expr):
    """The metric names a PromQL expression selects (a set)."""
    names = set()
    # Label matchers first keep their strings: `{__name__="x"}` names a metric.
    for block in _BRACES.findall(_GRAFANA_VAR.sub("", expr)):
        names.update(m for m in _NAME_MATCHER.findall(block) if re.fullmatch(r"[A-Za-z_:][\w:]*", m))
    s = _GRAFANA_VAR.sub(" ", expr)
    s = _STRING.sub('""', s)
    s = _BRACES.sub(" ", s)
    while _BRACKETS.search(s):
        s = _BRACKETS.sub(" ", s)
    s = _CLAUSE.sub(" ", s)
    # `group_left` / `group_right` may stand without a label list.
    for m in _IDENT.finditer(s):
        word = m.group(1)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in KEYWORDS:
            continue
        if re.fullmatch(r"(?i)[0-9.]*e[0-9]+|0x[0-9a-f]+", word):
            continue
        names.add(word)
    return names


# --- Inputs ----------------------------------------------------------------

def dashboard_exprs(doc):
    """(where, expr) for every PromQL expression in a Grafana dashboard."""
    out = []

    def panels(items, prefix=""):
        for p in items or []:
            title = p.get("title") or f"panel {p.get('id')}"
            for t in p.get("targets") or []:
                if isinstance(t, dict) and t.get("expr"):
                    out.append((f"panel {title!r} ({t.get('refId', '?')})", t["expr"]))
            panels(p.get("panels"), prefix)  # a collapsed row keeps its panels

    panels(doc.get("panels"))
    for row in doc.get("rows") or []:  # the old row layout
        panels(row.get("panels"))
    for v in (doc.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        if isinstance(q, dict):
            q = q.get("query") or q.get("expr") or ""
        q = (q or "").strip()
        where = f"variable {v.get('name')!r}"
        m = re.fullmatch(r"label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)", q, re.S)
        if m:
            out.append((where, m.group(1)))
            continue
        m = re.fullmatch(r"query_result\((.*)\)", q, re.S)
        if m:
            out.append((where, m.group(1)))
    return out


def rule_exprs(text, path):
    """(where, expr) for every rule in a Prometheus rule file."""
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        return _rule_exprs_plain(text)
    doc = yaml.safe_load(text) or {}
    out = []
    for g in doc.get("groups") or []:
        for r in g.get("rules") or []:
            name = r.get("alert") or r.get("record") or "?"
            if "expr" in r:
                out.append((f"rule {name}", str(r["expr"])))
    if not doc.get("groups"):
        raise ValueError(f"{path}: no `groups:`; not a rule file")
    return out


def _rule_exprs_plain(text):
    """Without PyYAML: `expr:` values, one line or a `|`/`>` block, quoted or not."""
    out, lines, name = [], text.splitlines(), "?"
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*-?\s*(alert|record):\s*(\S+)", line)
        if m:
            name = m.group(2).strip("'\"")
        m = re.match(r"^(\s*)-?\s*expr:\s*(.*)$", line)
        if m:
            value = m.group(2).strip()
            if value[:1] in ("|", ">"):
                indent = None
                block = []
                i += 1
                while i < len(lines) and (not lines[i].strip() or indent is None or
                                          len(lines[i]) - len(lines[i].lstrip()) >= indent):
                    if lines[i].strip():
                        if indent is None:
                            indent = len(lines[i]) - len(lines[i].lstrip())
                        block.append(lines[i].strip())
                    i += 1
                out.append((f"rule {name}", " ".join(block)))
                continue
            if value[:1] in ("'", '"'):
                value = value[1:-1]
            out.append((f"rule {name}", value))
        i += 1
    return out


def exprs_of(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.endswith(".json"):
        return dashboard_exprs(json.loads(text))
    if path.endswith((".yml", ".yaml")):
        return rule_exprs(text, path)
    raise ValueError(f"{path}: neither a dashboard (.json) nor a rule file (.yml)")


def parse_exposition(text):
    """{name: kind} from TYPE lines, and the set of sample names."""
    types, samples = {}, set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            m = re.match(r"#\s*TYPE\s+([A-Za-z_:][\w:]*)\s+(\w+)", line)
            if m:
                types[m.group(1)] = m.group(2)
            continue
        m = re.match(r"([A-Za-z_:][\w:]*)", line)
        if m:
            samples.add(m.group(1))
    return types, samples


def problem(name, types, samples):
    """None when the exposition has NAME as used, else what is wrong."""
    if name in types:
        kind = types[name]
        if kind == "histogram":
            return "is a histogram: select name_bucket, name_sum or name_count"
        return None
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in types:
            base, kind = name[: -len(suffix)], types[name[: -len(suffix)]]
            if suffix == "_bucket":
                return None if kind in ("histogram", "gaugehistogram") else \
                    f"{base} is a {kind}, which has no _bucket series"
            return None if kind in ("histogram", "summary", "gaugehistogram") else \
                f"{base} is a {kind}, which has no {suffix} series"
    if name in samples:
        return None
    return "not in the exposition"


def check(exposition_text, paths, out=sys.stdout, err=sys.stderr):
    types, samples = parse_exposition(exposition_text)
    if not types and not samples:
        print("error: the exposition is empty", file=err)
        return 2
    used, bad = {}, {}
    for path in paths:
        for where, expr in exprs_of(path):
            for name in names_in(expr):
                if IGNORED.match(name):
                    continue
                used.setdefault(name, []).append(f"{os.path.basename(path)}: {where}")
                why = problem(name, types, samples)
                if why:
                    bad.setdefault((name, why), []).append(f"{os.path.basename(path)}: {where}")
    for (name, why), wheres in sorted(bad.items()):
        print(f"missing: {name} ({why}); used in {'; '.join(sorted(set(wheres)))}", file=err)
    exported = {n for n in types if n.startswith("ips_")}
    covered = set()
    for n in used:
        covered.add(n)
        for suffix in SUFFIXES:
            if n.endswith(suffix):
                covered.add(n[: -len(suffix)])
    unused = sorted(exported - covered)
    if unused:
        print(f"note: exported but used nowhere in these files: {', '.join(unused)}", file=out)
    missing = sorted({n for n, _ in bad})
    print(f"{len(used)} metric names used, {len(missing)} missing"
          + (f": {', '.join(missing)}" if missing else ""), file=out)
    return 1 if bad else 0


# --- Synthetic exposition and self-test ------------------------------------

# What the bridge exports (DESIGN, src/telemetry): name, kind, labels of one
# example series. Every histogram has buckets: metrics-exporter-prometheus writes
# a histogram without configured buckets as a summary, which the checker refuses
# for a `_bucket` selector.
SYNTHETIC = [
    ("ips_messages_total", "counter", 'source="amqp",outcome="processed"'),
    ("ips_dead_letters_total", "counter", 'code="invalid-json"'),
    ("ips_fhir_requests_total", "counter", 'method="GET",status="2xx"'),
    ("ips_referrals_received_total", "counter", 'source="bars"'),
    ("ips_referrals_incomplete_total", "counter", ""),
    ("ips_referral_decisions_total", "counter", 'outcome="accepted"'),
    ("ips_outbox_delivered_total", "counter", 'kind="fhir-create"'),
    ("ips_outbox_parked_total", "counter", 'kind="fhir-create"'),
    ("ips_timers_fired_total", "counter", ""),
    ("ips_outreach_flags_raised_total", "counter", 'rule="dna-2"'),
    ("ips_outreach_flags_resolved_total", "counter", 'resolution="attended"'),
    ("ips_outreach_closures_total", "counter", 'result="prevented"'),
    ("ips_outreach_attempts_total", "counter", 'method="phone",outcome="reached"'),
    ("ips_documents_published_total", "counter", 'kind="vp"'),
    ("ips_document_comments_total", "counter", 'source="gp"'),
    ("ips_document_reviews_chased_total", "counter", ""),
    ("ips_document_deliveries_total", "counter", 'state="sent"'),
    ("ips_mesh_requests_total", "counter", 'op="send",status="202"'),
    ("ips_mesh_send_failures_total", "counter", 'reason="auth"'),
    ("ips_mesh_inbox_failures_total", "counter", 'reason="auth"'),
    ("ips_mesh_messages_sent_total", "counter", 'workflow="GPCONNECT_SEND_DOCUMENT"'),
    ("ips_mesh_messages_rejected_total", "counter", 'code="invalid-json"'),
    ("ips_webhook_tls_refused_total", "counter", ""),
    ("ips_broker_connected", "gauge", ""),
    ("ips_fhir_breaker_open", "gauge", ""),
    ("ips_outbox_pending", "gauge", ""),
    ("ips_outbox_failed", "gauge", ""),
    ("ips_referrals_incomplete", "gauge", ""),
    ("ips_referrals_incomplete_oldest_seconds", "gauge", ""),
    ("ips_waiting_list_size", "gauge", ""),
    ("ips_outreach_flags_active", "gauge", ""),
    ("ips_outreach_flags_due_soon", "gauge", ""),
    ("ips_outreach_flags_overdue", "gauge", ""),
    ("ips_outreach_closures_by_rule", "gauge", ""),
    ("ips_document_deliveries", "gauge", 'state="unacknowledged"'),
    ("ips_document_reviews_overdue", "gauge", ""),
    ("ips_batch_seconds", "histogram", ""),
    ("ips_batch_messages", "histogram", ""),
    ("ips_referral_days_to_first_contact", "histogram", ""),
    ("ips_document_review_turnaround_days", "histogram", ""),
    ("ips_mesh_request_seconds", "histogram", 'op="send"'),
]


def synthetic():
    lines = []
    for name, kind, labels in SYNTHETIC:
        lines.append(f"# TYPE {name} {kind}")
        sep = "," if labels else ""
        if kind == "histogram":
            for le in ("1", "7", "+Inf"):
                lines.append(f'{name}_bucket{{{labels}{sep}le="{le}"}} 0')
            lines.append(f"{name}_sum{{{labels}}} 0" if labels else f"{name}_sum 0")
            lines.append(f"{name}_count{{{labels}}} 0" if labels else f"{name}_count 0")
        elif kind == "summary":
            for q in ("0.5", "0.9", "0.99"):
                lines.append(f'{name}{{{labels}{sep}quantile="{q}"}} 0')
            lines.append(f"{name}_sum{{{labels}}} 0" if labels else f"{name}_sum 0")
            lines.append(f"{name}_count{{{labels}}} 0" if labels else f"{name}_count 0")
        else:
            lines.append(f"{name}{{{labels}}} 0" if labels else f"{name} 0")
    return "\n".join(lines) + "\n"


def self_test():
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append(f"{what}: got {got!r}, want {want!r}")

    cases = {
        'sum by (outcome, source) (rate(ips_messages_total{job=~"$job", outcome!="ok"}[$__rate_interval]))':
            {"ips_messages_total"},
        'histogram_quantile(0.9, sum by (le) (rate(ips_referral_days_to_first_contact_bucket[7d])))':
            {"ips_referral_days_to_first_contact_bucket"},
        'deriv(ips_outbox_pending[15m]) > 0 and ips_outbox_pending > 50': {"ips_outbox_pending"},
        'sum(rate(a_total[5m] offset 1h)) / ignoring(code) group_left sum(b) unless on(job) c > bool 1e3':
            {"a_total", "b", "c"},
        'max_over_time(ips_fhir_breaker_open[1h:1m])': {"ips_fhir_breaker_open"},
        'label_replace(up{job="x"}, "by", "$1", "instance", "(.*):.*") == 0': {"up"},
        '{__name__="ips_waiting_list_size", job="x"}': {"ips_waiting_list_size"},
        'sum(rate(x_total{instance=~"${instance:regex}"}[${__range}]))': {"x_total"},
        'absent(up{job="ips-bridge"}) or vector(0) * -Inf': {"up"},
        'count(ips_mesh_request_seconds{quantile="0.99"} @ end())': {"ips_mesh_request_seconds"},
        '0x1F + 2.5e-3 + NaN': set(),
    }
    for expr, want in cases.items():
        expect(expr, names_in(expr), want)

    with tempfile.TemporaryDirectory() as d:
        dash = os.path.join(d, "dash.json")
        rules = os.path.join(d, "rules.yml")

        def write_dash(expr):
            with open(dash, "w") as f:
                json.dump({"panels": [
                    {"id": 1, "type": "row", "title": "r", "collapsed": True,
                     "panels": [{"id": 2, "title": "p", "targets": [{"refId": "A", "expr": expr}]}]},
                    {"id": 3, "title": "q", "targets": [{"refId": "A", "expr": "sum(rate(ips_batch_seconds_sum[5m]))"}]},
                ], "templating": {"list": [
                    {"type": "query", "name": "instance",
                     "query": {"query": 'label_values(ips_broker_connected{job=~"$job"}, instance)'}},
                ]}}, f)

        with open(rules, "w") as f:
            f.write("groups:\n  - name: g\n    rules:\n      - alert: A\n"
                    "        expr: increase(ips_dead_letters_total[15m]) > 0\n"
                    "      - alert: B\n        expr: |\n          up == 0\n"
                    "      - record: r:x\n        expr: 'sum(ips_outbox_failed)'\n")
        quiet = open(os.devnull, "w")
        exp = synthetic()
        write_dash("sum(rate(ips_messages_total[5m]))")
        expect("good files pass", check(exp, [dash, rules], quiet, quiet), 0)
        write_dash("sum(rate(ips_mesages_total[5m]))")  # misspelt
        expect("a misspelt dashboard metric fails", check(exp, [dash, rules], quiet, quiet), 1)
        write_dash("histogram_quantile(0.9, rate(ips_batch_seconds_bucket[5m]))")
        expect("_bucket of a histogram passes", check(exp, [dash], quiet, quiet), 0)
        as_summary = exp.replace("# TYPE ips_batch_seconds histogram", "# TYPE ips_batch_seconds summary")
        expect("_bucket of a summary fails", check(as_summary, [dash], quiet, quiet), 1)
        write_dash("ips_referral_days_to_first_contact")
        expect("a histogram's bare name fails", check(exp, [dash], quiet, quiet), 1)
        write_dash("sum(rate(ips_messages_total[5m]))")
        expect("a metric missing from the exposition fails",
               check(exp.replace("ips_dead_letters_total", "ips_other_total"), [dash, rules], quiet, quiet), 1)
        expect("the variable's metric is checked",
               check(exp.replace("ips_broker_connected", "ips_other"), [dash], quiet, quiet), 1)
        expect("plain reader of rule files",
               sorted(e for _, e in _rule_exprs_plain(open(rules).read())),
               sorted(["increase(ips_dead_letters_total[15m]) > 0", "up == 0", "sum(ips_outbox_failed)"]))
        quiet.close()

    for f in failures:
        print("self-test FAILED:", f, file=sys.stderr)
    print("metric_names self-test: " + ("ok" if not failures else f"{len(failures)} failure(s)"))
    return 1 if failures else 0


def main(argv):
    if argv[:1] == ["--self-test"]:
        return self_test()
    if argv[:1] == ["--synthetic"]:
        sys.stdout.write(synthetic())
        return 0
    try:
        if argv[:1] == ["--list"] and len(argv) > 1:
            names = set()
            for p in argv[1:]:
                for _, e in exprs_of(p):
                    names |= names_in(e)
            print("\n".join(sorted(names)))
            return 0
        if len(argv) < 2 or argv[0].startswith("--"):
            print(__doc__, file=sys.stderr)
            return 2
        if argv[0] == "-":
            text = sys.stdin.read()
        else:
            with open(argv[0], encoding="utf-8") as f:
                text = f.read()
        return check(text, argv[1:])
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
