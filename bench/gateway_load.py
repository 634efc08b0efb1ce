"""Load-test the reference gateway with autocannon (the runbook's tool) on this machine.

    python bench/gateway_load.py [--duration 30] [--workers 2] [--only healthz,login,reports]

Starts a real redis-server (tests/harness), the mock upstream and the gateway (WORKERS=2, access
log on, written to a file), creates the users and a key set, runs autocannon against 127.0.0.1 only
and prints a table with the runbook's "Benchmark Results" figures and the ratios.  Results are
also written to bench/results/gateway_load-<time>.json.  Not part of the test suite.

autocannon is installed with npm into $AUTOCANNON_PREFIX (default /tmp/apigw-bench-node) if missing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GATEWAY_SRC = os.path.join(REPO, "gateway")
sys.path[:0] = [REPO, GATEWAY_SRC]

from apigw_gateway import devkeys, users
from tests.harness.redis_servers import free_port, start_standalone

AUTOCANNON_VERSION = "8.0.0"
PASSWORD = "bench-password"
# the runbook's "Benchmark Results" table (2 CPU cores, 4 GB RAM)
RUNBOOK = {"healthz": (5000, 5, 10, 20), "login": (500, 50, 100, 150), "reports": (1000, 20, 50, 100)}
COSTS = {"low": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
         "owasp": {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}}


def ensure_autocannon(prefix):
    module = os.path.join(prefix, "node_modules", "autocannon")
    if not os.path.isdir(module):
        os.makedirs(prefix, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", prefix,
                        f"autocannon@{AUTOCANNON_VERSION}"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(module, "package.json")) as handle:
        return json.load(handle)["version"]


def wait_ok(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up")


def post_json(url, data):
    request = urllib.request.Request(url, json.dumps(data).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def cpu_seconds(pid):
    """utime + stime of a process (its own threads; not its children)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(p) for p in handle.read().split()]


def autocannon(prefix, spec, pids=None):
    """Run one load test; with pids ({name: [pid, ...]}) also measure the CPU each group used per request."""
    env = dict(os.environ, NODE_PATH=os.path.join(prefix, "node_modules"))
    before = {name: sum(cpu_seconds(p) for p in group) for name, group in (pids or {}).items()}
    proc = subprocess.Popen(["node", os.path.join(HERE, "gateway_load.js"), json.dumps(spec)], env=env,
                            stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"autocannon failed ({proc.returncode})")
    result = json.loads(out)
    if pids:
        used = {name: sum(cpu_seconds(p) for p in group) - before[name] for name, group in pids.items()}
        used["autocannon"] = usage.ru_utime + usage.ru_stime
        responses = max(1, result["responses"])
        result["cpu_ms_per_request"] = {name: round(sec * 1000 / responses, 3) for name, sec in used.items()}
        total = sum(used.values()) * 1000 / responses
        result["cpu_ms_per_request"]["total"] = round(total, 3)
        # what this CPU cost per request allows on os.cpu_count() otherwise idle cores
        result["cpu_bound_req_per_s"] = round(os.cpu_count() * 1000 / total)
    return result


def table(results):
    lines = ["| Scenario | Conns | Req/s | P50 ms | P95 ms | P99 ms | non-2xx | errors | Runbook req/s | "
             "Req/s ratio | Runbook P95 ms | P95 ratio | Gateway CPU ms/req | All CPU ms/req | CPU-bound req/s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, result in results.items():
        target = RUNBOOK[name.split(":")[0]]
        lat = result["latency_ms"]
        cpu = result.get("cpu_ms_per_request", {})
        lines.append(f"| {name} | {result['connections']} | {result['req_per_s']:.0f} | {lat['p50']:.1f} | "
                     f"{lat['p95']:.1f} | {lat['p99']:.1f} | {result['non2xx']} | {result['errors']} | {target[0]} | "
                     f"{result['req_per_s'] / target[0]:.2f} | {target[2]} | {lat['p95'] / target[2]:.2f} | "
                     f"{cpu.get('gateway', 0):.2f} | {cpu.get('total', 0):.2f} | {result.get('cpu_bound_req_per_s')} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=30, help="seconds per scenario (runbook: 30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="healthz,login,login-owasp,reports")
    parser.add_argument("--reports-connections", type=int, default=20)
    args = parser.parse_args()
    prefix = os.environ.get("AUTOCANNON_PREFIX", "/tmp/apigw-bench-node")
    version = ensure_autocannon(prefix)

    load_start = [round(x, 2) for x in os.getloadavg()]
    work = tempfile.mkdtemp(prefix="apigw-bench-")
    redis = start_standalone()
    procs = []
    try:
        keys_dir = os.path.join(work, "keys")
        devkeys.write_keyset(keys_dir)
        users_file = os.path.join(work, "users.json")
        for name, cost in COSTS.items():
            users.add_user(users_file, f"bench-{name}", PASSWORD, **cost)
        up_port, gw_port = free_port(), free_port()
        env = dict(os.environ, PYTHONPATH=GATEWAY_SRC)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with open(os.path.join(work, "upstream.log"), "wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "apigw_gateway.upstream", "--port", str(up_port)],
                                          env=env, stdout=log, stderr=subprocess.STDOUT))
        gw_env = dict(env, HOST="127.0.0.1", PORT=str(gw_port), WORKERS=str(args.workers), REDIS_URL=redis.url(),
                      UPSTREAM_URL=f"http://127.0.0.1:{up_port}", JWT_KEYS_DIR=keys_dir, USERS_FILE=users_file,
                      AUDIT_LOG_FILE=os.path.join(work, "audit-logs.json"),
                      # one client IP and one user generate all the load: lift the limits out of the way
                      RATE_LIMIT_GLOBAL_MAX="1000000000", RATE_LIMIT_USER_MAX="1000000000",
                      RATE_LIMIT_AUTH_MAX="1000000000")
        with open(os.path.join(work, "gateway.log"), "wb") as log:
            procs.append(subprocess.Popen([sys.executable, "-m", "apigw_gateway"], env=gw_env, stdout=log,
                                          stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{gw_port}"
        wait_ok(f"http://127.0.0.1:{up_port}/healthz")
        wait_ok(base + "/readyz")
        access = post_json(base + "/auth/login", {"username": "bench-low", "password": PASSWORD})["accessToken"]

        def login(user):
            return {"url": base + "/auth/login", "connections": 10, "method": "POST",
                    "headers": {"Content-Type": "application/json"},
                    "body": json.dumps({"username": user, "password": PASSWORD})}

        scenarios = {
            "healthz": {"url": base + "/healthz", "connections": 100},
            "login": login("bench-low"),
            "login-owasp": login("bench-owasp"),
            "reports": {"url": base + "/reports/q3-sales", "connections": args.reports_connections,
                        "headers": {"Authorization": f"Bearer {access}"}},
        }
        results = {}
        for name in args.only.split(","):
            spec = scenarios[name]
            autocannon(prefix, {**spec, "duration": args.warmup})
            gateway_pids = [procs[1].pid] + children(procs[1].pid)
            pids = {"gateway": gateway_pids, "upstream": [procs[0].pid], "redis": [redis.pid]}
            label = {"login": "login:argon2id m=1024,t=1", "login-owasp": "login:argon2id m=19456,t=2"}.get(name, name)
            results[label] = autocannon(prefix, {**spec, "duration": args.duration}, pids)
            print(f"{label}: {results[label]['req_per_s']:.0f} req/s, P95 {results[label]['latency_ms']['p95']:.1f} ms",
                  file=sys.stderr)
        machine = {"cpus": os.cpu_count(), "python": sys.version.split()[0], "autocannon": version,
                   "workers": args.workers, "duration_s": args.duration,
                   # other work on the machine skews every figure: record how busy it was
                   "loadavg_start": load_start, "loadavg_end": [round(x, 2) for x in os.getloadavg()]}
        print(f"Machine: {machine}")
        print(table(results))
        os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
        out = os.path.join(HERE, "results", time.strftime("gateway_load-%Y%m%d-%H%M%S.json"))
        with open(out, "w") as handle:
            json.dump({"machine": machine, "results": results}, handle, indent=1)
        print(f"Results: {out}")
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
