# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of gateway_audit against the runbook's own jq pipelines, on the same audit log, in one run.

Not part of the test suite.  Writes an audit log of --lines JSON lines (default 1,000,000) in the reference
gateway's shape (compact JSON, as orjson writes it; 40% LOGIN_FAILURE, 30% LOGIN_SUCCESS, the rest the other
event types; 20,000 client IPs of which a few attack; 5,000 usernames), then times, each --repeat times (median):

  brute force, steps 1 + 2 of the runbook's "Brute Force Attack" investigation
    runbook  jq 'select(.eventType=="LOGIN_FAILURE")' F | tail -20          (as written: 20 lines of pretty JSON)
             jq -r 'select(.eventType=="LOGIN_FAILURE") | .ip' F | sort | uniq -c | sort -rn | head -10
    module   gateway_audit event_type=LOGIN_FAILURE limit=20 top=10 top_by=ip            (one pass: both answers)
  accounts, resolution step 4 ("Review audit logs for compromised accounts")
    runbook  jq 'select(.eventType=="LOGIN_SUCCESS")' F | jq -r '.username' | sort | uniq -c | sort -rn
    module   gateway_audit event_type=LOGIN_SUCCESS top=100000 top_by=username limit=0
  all events, top IPs (every line parsed: no byte screen can help)
    runbook  jq -r '.ip' F | sort | uniq -c | sort -rn | head -10
    module   gateway_audit limit=20 top=10 top_by=ip

The module runs as Ansible runs it on a host: python running the module file of a collection tree with its
arguments in a JSON file (interpreter start and imports included).  Results are compared (counts and top
values), then wall seconds and CPU seconds (user+sys of the waited-for children) and ratios are printed.

Usage: python bench/bench_audit.py [--lines N] [--repeat N] [--keep FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TYPES = (["LOGIN_FAILURE"] * 40 + ["LOGIN_SUCCESS"] * 30 + ["TOKEN_REFRESH"] * 15 + ["LOGOUT"] * 5
         + ["TOKEN_REVOKED"] * 5 + ["ACCOUNT_LOCKED"] * 3 + ["RATE_LIMIT_EXCEEDED"] * 2)


def write_log(path, lines, seed=7):
    rng = random.Random(seed)
    ips = ["10.%d.%d.%d" % (n // 65536, n // 256 % 256, n % 256) for n in range(20000)]
    attackers = ["203.0.113.%d" % n for n in range(1, 31)]
    users = ["user%04d" % n for n in range(5000)]
    start = 1768471200
    with open(path, "w") as handle:
        chunk = []
        second, prefix = None, None
        for n in range(lines):
            event_type = TYPES[n % len(TYPES)]
            if event_type == "LOGIN_FAILURE" and rng.random() < 0.5:
                ip, user = attackers[min(int(rng.expovariate(0.25)), 29)], rng.choice(("admin", "root", "alice"))
            else:
                ip, user = rng.choice(ips), rng.choice(users)
            if n // 100 != second:                     # 100 events a second
                second = n // 100
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start + second))
            line = '{"timestamp":"%s.%03dZ","eventType":"%s","username":"%s","ip":"%s","requestId":"%032x"' % (
                prefix, n % 100 * 10, event_type, user, ip, rng.getrandbits(128))
            if event_type == "LOGIN_FAILURE":
                line += ',"reason":"invalid_credentials","failures":%d}' % (1 + n % 5)
            elif event_type == "LOGIN_SUCCESS":
                line += ',"userId":"user-%s"}' % user
            else:
                line += "}"
            chunk.append(line)
            if len(chunk) >= 10000:
                handle.write("\n".join(chunk) + "\n")
                chunk = []
        if chunk:
            handle.write("\n".join(chunk) + "\n")


def collection_root():
    root = tempfile.mkdtemp(prefix="apigw-bench-audit-coll-")
    subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], check=True, capture_output=True,
                   env=dict(os.environ, APIGW_COLLECTION_ROOT=root))
    return root


def timed(argv, **kwargs):
    """Wall and CPU (user+sys of the child and everything it waited for) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit("%s failed (%d): %s" % (argv[:3], proc.returncode, proc.stderr[-500:]))
    return wall, cpu, proc.stdout


def run_module(root, args):
    path = os.path.join(root, "ansible_collections", "apigw", "ops", "plugins", "modules", "gateway_audit.py")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    try:
        wall, cpu, out = timed([sys.executable, path, handle.name], env=dict(os.environ, PYTHONPATH=root))
    finally:
        os.unlink(handle.name)
    result = json.loads(out)
    if result.get("failed"):
        raise SystemExit("module failed: %s" % result.get("msg"))
    return wall, cpu, result


def bash(script, path):
    return timed(["bash", "-c", script, "runbook", path])     # as typed: no pipefail (head closes the pipe)


def uniq_c(output):
    rows = []
    for line in output.splitlines():
        count, _sep, value = line.strip().partition(" ")
        rows.append((int(count), value))
    return rows


def json_stream(text):
    """The documents of jq's (pretty-printed) output."""
    decoder, docs, index = json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return docs
        doc, index = decoder.raw_decode(text, index)
        docs.append(doc)


def median(samples):
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--lines", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="write the audit log here and keep it (default: a temp file, removed)")
    opts = parser.parse_args()
    jq = shutil.which("jq")
    if not jq:
        raise SystemExit("jq is not installed (scripts/bootstrap.sh installs it)")
    workdir = tempfile.mkdtemp(prefix="apigw-bench-audit-")
    path = opts.keep or os.path.join(workdir, "audit-logs.json")
    root = collection_root()
    try:
        started = time.perf_counter()
        write_log(path, opts.lines)
        size = os.path.getsize(path)
        print("audit log: %d lines, %.1f MB, written in %.1f s" % (opts.lines, size / 1e6,
                                                                   time.perf_counter() - started))
        print("machine: %s, Python %s, %s, %d CPUs, load average %s" % (
            platform.platform(), platform.python_version(),
            subprocess.run([jq, "--version"], capture_output=True, text=True, check=False).stdout.strip(),
            os.cpu_count(), "/".join("%.1f" % v for v in os.getloadavg())))
        cases = []

        # -- brute force: steps 1 + 2 --------------------------------------------------------------
        tail, top, module = [], [], []
        for _round in range(opts.repeat):
            tail.append(bash("jq 'select(.eventType==\"LOGIN_FAILURE\")' \"$1\" | tail -20", path))
            top.append(bash("jq -r 'select(.eventType==\"LOGIN_FAILURE\") | .ip' \"$1\" | sort | uniq -c "
                            "| sort -rn | head -10", path))
            module.append(run_module(root, dict(path=path, event_type=["LOGIN_FAILURE"], limit=20, top=10,
                                                top_by=["ip"])))
        result = module[-1][2]
        # as written, the runbook's `| tail -20` keeps 20 lines of pretty-printed JSON (the last 2 events);
        # the events are compared with jq -c (one event a line), not timed
        jq_events = json_stream(bash("jq -c 'select(.eventType==\"LOGIN_FAILURE\")' \"$1\" | tail -20", path)[2])
        assert result["events"] == jq_events, "events differ from jq | tail -20"
        jq_top = uniq_c(top[-1][2])
        assert [c for c, _ip in jq_top] == [t["count"] for t in result["top"]["ip"]], (jq_top, result["top"])
        assert dict((ip, c) for c, ip in jq_top if c > jq_top[-1][0]) == dict(
            (t["value"], t["count"]) for t in result["top"]["ip"] if t["count"] > jq_top[-1][0])
        cases.append(("brute force: failures + top 10 IPs", [a[:2] for a in tail], [b[:2] for b in top],
                      [m[:2] for m in module], result["matched"]))

        # -- compromised accounts: LOGIN_SUCCESS per username -------------------------------------
        runbook, module = [], []
        for _round in range(opts.repeat):
            runbook.append(bash("jq 'select(.eventType==\"LOGIN_SUCCESS\")' \"$1\" | jq -r '.username' | sort "
                                "| uniq -c | sort -rn", path))
            module.append(run_module(root, dict(path=path, event_type=["LOGIN_SUCCESS"], limit=0, top=100000,
                                                top_by=["username"])))
        result = module[-1][2]
        assert dict((u, c) for c, u in uniq_c(runbook[-1][2])) == dict(
            (t["value"], t["count"]) for t in result["top"]["username"]), "username counts differ"
        cases.append(("accounts: successes per username", [r[:2] for r in runbook], None, [m[:2] for m in module],
                      result["matched"]))

        # -- every event, top IPs ------------------------------------------------------------------
        runbook, module = [], []
        for _round in range(opts.repeat):
            runbook.append(bash("jq -r '.ip' \"$1\" | sort | uniq -c | sort -rn | head -10", path))
            module.append(run_module(root, dict(path=path, limit=20, top=10, top_by=["ip"])))
        result = module[-1][2]
        assert [c for c, _ip in uniq_c(runbook[-1][2])] == [t["count"] for t in result["top"]["ip"]]
        cases.append(("all events: top 10 IPs", [r[:2] for r in runbook], None, [m[:2] for m in module],
                      result["matched"]))

        print()
        print("| case | matched | runbook wall s | module wall s | wall ratio | runbook CPU s | module CPU s "
              "| CPU ratio |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for name, first, second, mod, matched in cases:
            wall_a, cpu_a = median(first)
            if second is not None:
                wall_b, cpu_b = median(second)
                wall_a, cpu_a = wall_a + wall_b, cpu_a + cpu_b
            wall_m, cpu_m = median(mod)
            print("| %s | %d | %.2f | %.2f | %.1fx | %.2f | %.2f | %.1fx |" % (
                name, matched, wall_a, wall_m, wall_a / wall_m, cpu_a, cpu_m, cpu_a / cpu_m))
        print()
        print("ratio = runbook / module (higher: the module is faster); medians of %d rounds; brute force = the "
              "two runbook commands together against one module run.  Load average at the end: %s"
              % (opts.repeat, "/".join("%.1f" % v for v in os.getloadavg())))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
