"""Load-test the gateway with autocannon (the runbook's tool), on this machine only.

    python bench/gateway_load.py --url http://127.0.0.1:8080 [--duration 30]   # a deployed gateway (main job)
    python bench/gateway_load.py [--duration 30] [--workers 2] [--only healthz,login,reports]   # one it starts

With --url it benchmarks the gateway already running there (scripts/main-job.sh deploys one at
http://127.0.0.1:8080): /healthz at -c 50 and -c 100, /auth/login at -c 10 as the user the
inventory gives (inventories/local/group_vars/all.yml, or --username/--password), /reports/:id at
-c 20 with the token that login returns, and, in the same run, a bare Node.js `http` cluster with
2 workers (bench/node_floor.js) answering like /healthz, the floor.  Without --url it starts a real
redis-server (tests/harness), the mock upstream and the gateway (WORKERS=2, access log on, written
to a file, rate limits lifted) and also reports the CPU each process used per request.  Either way
it prints a table with req/s, P50/P95/P97.5/P99, non-2xx and the ratios to the runbook's "Benchmark
Results" and to the floor, plus the load average; results also go to bench/results/*.json.
Loopback targets only.  Not part of the test suite.

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
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
GATEWAY_SRC = os.path.join(REPO, "gateway")
sys.path[:0] = [REPO, GATEWAY_SRC]

from apigw_gateway import devkeys, users
from tests.harness.redis_servers import free_port, start_standalone

# 8.0.0 declares no `engines`; it and its dependencies run on Node.js 18 (Debian 12's) and later
AUTOCANNON_VERSION = "8.0.0"
PASSWORD = "bench-password"
# the runbook's "Benchmark Results" table (2 CPU cores, 4 GB RAM): req/s, P50, P95, P99 (ms)
RUNBOOK = {"healthz": (5000, 5, 10, 20), "login": (500, 50, 100, 150), "reports": (1000, 20, 50, 100),
           "node": (5000, 5, 10, 20)}
INVENTORY_VARS = os.path.join(REPO, "inventories", "local", "group_vars", "all.yml")
COSTS = {"low": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
         "owasp": {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}}


def ensure_autocannon(prefix):
    module = os.path.join(prefix, "node_modules", "autocannon")
    if installed_version(module) != AUTOCANNON_VERSION:
        os.makedirs(prefix, exist_ok=True)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", prefix,
                        f"autocannon@{AUTOCANNON_VERSION}"], check=True, stdout=subprocess.DEVNULL)
    return installed_version(module)


def installed_version(module):
    try:
        with open(os.path.join(module, "package.json")) as handle:
            return json.load(handle)["version"]
    except OSError:
        return None


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
    proc = subprocess.Popen(["node", os.path.join(HERE, "gateway_load.js")], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(spec))
    proc.stdin.close()
    out = proc.stdout.read()  # not communicate(): it reaps the process, and wait4 below needs its rusage
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
    """Markdown table: the figures, the runbook's, the node floor's of the same run, and the load average."""
    local = any("cpu_ms_per_request" in r for r in results.values())
    head = ["Scenario", "Conns", "Req/s", "P50 ms", "P95 ms", "P97.5 ms", "P99 ms", "non-2xx", "errors",
            "Req/s / runbook", "P95 / runbook", "Req/s / node floor", "Load avg 1 min"]
    if local:
        head += ["Gateway CPU ms/req", "All CPU ms/req", "CPU-bound req/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, result in results.items():
        kind = name.split(":")[0]
        target = RUNBOOK[kind]
        lat = result["latency_ms"]
        floor = results.get(f"node:c{result['connections']}")
        vs_floor = f"{result['req_per_s'] / floor['req_per_s']:.2f}" if floor and kind == "healthz" else "-"
        row = [name, result["connections"], f"{result['req_per_s']:.0f}", f"{lat['p50']:.1f}", f"{lat['p95']:.1f}",
               f"{lat['p97_5']:.1f}", f"{lat['p99']:.1f}", result["non2xx"], result["errors"],
               f"{result['req_per_s'] / target[0]:.2f}" if kind != "node" else "-",
               f"{lat['p95'] / target[2]:.2f}" if kind != "node" else "-", vs_floor,
               "{} -> {}".format(*result["loadavg_1m"])]
        if local:
            cpu = result.get("cpu_ms_per_request", {})
            row += [f"{cpu.get('gateway', 0):.2f}", f"{cpu.get('total', 0):.2f}", result.get("cpu_bound_req_per_s")]
        lines.append("| " + " | ".join(str(cell) for cell in row) + " |")
    return "\n".join(lines)


def run_scenarios(prefix, scenarios, names, args, pids_of=None):
    """Each scenario: a warm-up, then the measured run; returns {label: result}."""
    results = {}
    for name in names:
        label, spec = scenarios[name]
        autocannon(prefix, {**spec, "duration": args.warmup})
        before = round(os.getloadavg()[0], 2)
        result = autocannon(prefix, {**spec, "duration": args.duration}, pids_of() if pids_of else None)
        result["loadavg_1m"] = [before, round(os.getloadavg()[0], 2)]
        results[label] = result
        lat = result["latency_ms"]
        print(f"{label}: {result['req_per_s']:.0f} req/s, P95 {lat['p95']:.1f} ms, P97.5 {lat['p97_5']:.1f} ms, "
              f"non-2xx {result['non2xx']}, load {result['loadavg_1m']}", file=sys.stderr)
    return results


def healthz_specs(base, floor_base, connections):
    specs = {}
    for conns in connections:
        specs[f"healthz-c{conns}"] = (f"healthz:c{conns}", {"url": base + "/healthz", "connections": conns})
        specs[f"node-c{conns}"] = (f"node:c{conns}", {"url": floor_base + "/healthz", "connections": conns})
    return specs


def login_spec(base, username, password):
    return {"url": base + "/auth/login", "connections": 10, "method": "POST",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"username": username, "password": password})}


class NodeFloor:
    """bench/node_floor.js: a bare Node.js http cluster (2 workers) on a free loopback port."""

    def __init__(self, workers=2):
        self.port = free_port()
        self.proc = subprocess.Popen(["node", os.path.join(HERE, "node_floor.js"), str(self.port), str(workers),
                                      "3600"], stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise SystemExit("bench/node_floor.js did not start")
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def inventory_password(username):
    """The password the local inventory gives the user (a demo password, never printed)."""
    import yaml

    with open(INVENTORY_VARS) as handle:
        data = yaml.safe_load(handle) or {}
    for user in data.get("gateway_users", []):
        if user.get("username") == username:
            return str(user["password"])
    return None


def user_cost(users_file, username):
    """'argon2id m=19456,t=2,p=1' from the user's hash in a users file this machine can read, else 'cost unknown'."""
    try:
        with open(users_file) as handle:
            encoded = json.load(handle)["users"][username]["password_hash"]
        algorithm, _version, params = encoded.split("$")[1:4]
        return f"{algorithm} {params}"
    except (OSError, KeyError, ValueError):
        return "cost unknown"


def check_loopback(url):
    host = urllib.parse.urlsplit(url).hostname or ""
    if not (host in {"localhost", "::1"} or host.startswith("127.")):
        raise SystemExit(f"refusing {url}: this benchmark only sends load to loopback addresses")


def machine_info(args, version, load_start):
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "autocannon": version,
            "node": subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip(),
            "duration_s": args.duration, "url": args.url, "workers": None if args.url else args.workers,
            # other work on the machine skews every figure: record how busy it was
            "loadavg_start": load_start, "loadavg_end": [round(x, 2) for x in os.getloadavg()]}


def report(machine, results):
    print(f"Machine: {machine}")
    print(table(results))
    refused = sum(r["statuses"].get("429", 0) for r in results.values())
    if refused:
        print(f"Note: {refused} answers were 429 (rate limit): the deployed limits count every request of this one "
              "client IP; lift them for the benchmark as bench/README.md shows.")
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", time.strftime("gateway_load-%Y%m%d-%H%M%S.json"))
    with open(out, "w") as handle:
        json.dump({"machine": machine, "results": results}, handle, indent=1)
    print(f"Results: {out}")


def bench_url(args, prefix, version):
    """The gateway already running at args.url (e.g. the main job's stack), next to the node floor."""
    base = args.url.rstrip("/")
    check_loopback(base)
    password = args.password or os.environ.get("APIGW_BENCH_PASSWORD") or inventory_password(args.username)
    if not password:
        raise SystemExit(f"no password for {args.username}: pass --password or set APIGW_BENCH_PASSWORD")
    load_start = [round(x, 2) for x in os.getloadavg()]
    wait_ok(base + "/readyz", timeout=10)
    names = args.only.split(",") if args.only else ["node-c50", "healthz-c50", "node-c100", "healthz-c100", "login",
                                                    "reports"]
    floor = NodeFloor() if any(n.startswith("node") for n in names) else None
    try:
        scenarios = healthz_specs(base, floor.url if floor else "", (50, 100))
        cost = user_cost(args.users_file, args.username)
        scenarios["login"] = (f"login:{args.username}, {cost}", login_spec(base, args.username, password))
        if "reports" in names:
            try:
                access = post_json(base + "/auth/login",
                                   {"username": args.username, "password": password})["accessToken"]
            except urllib.error.HTTPError as exc:
                raise SystemExit(f"cannot log in as {args.username} for the reports token: HTTP {exc.code}"
                                 + (" (rate limit: lift it for the benchmark as bench/README.md shows)"
                                    if exc.code == 429 else "")) from None
            scenarios["reports"] = ("reports:c20", {"url": base + "/reports/q3-sales", "connections": 20,
                                                    "headers": {"Authorization": f"Bearer {access}"}})
        results = run_scenarios(prefix, scenarios, names, args)
    finally:
        if floor:
            floor.stop()
    report(machine_info(args, version, load_start), results)


def bench_local(args, prefix, version):
    """A gateway this script starts (rate limits lifted), with the CPU each process used per request."""
    load_start = [round(x, 2) for x in os.getloadavg()]
    work = tempfile.mkdtemp(prefix="apigw-bench-")
    redis = start_standalone()
    procs = []
    floor = None
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
        names = (args.only or "healthz-c100,login,login-owasp,reports").split(",")
        floor = NodeFloor() if any(n.startswith("node") for n in names) else None
        scenarios = healthz_specs(base, floor.url if floor else "", (50, 100))
        scenarios["healthz"] = scenarios["healthz-c100"]
        scenarios["login"] = ("login:argon2id m=1024,t=1", login_spec(base, "bench-low", PASSWORD))
        scenarios["login-owasp"] = ("login:argon2id m=19456,t=2", login_spec(base, "bench-owasp", PASSWORD))
        scenarios["reports"] = ("reports:c20", {"url": base + "/reports/q3-sales",
                                                "connections": args.reports_connections,
                                                "headers": {"Authorization": f"Bearer {access}"}})

        def pids_of():
            gateway_pids = [procs[1].pid] + children(procs[1].pid)
            return {"gateway": gateway_pids, "upstream": [procs[0].pid], "redis": [redis.pid]}

        results = run_scenarios(prefix, scenarios, names, args, pids_of)
        report(machine_info(args, version, load_start), results)
    finally:
        if floor:
            floor.stop()
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="benchmark the gateway already running there (loopback only), "
                                      "e.g. http://127.0.0.1:8080 as scripts/main-job.sh deploys it")
    parser.add_argument("--duration", type=int, default=30, help="seconds per scenario (runbook: 30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--only", help="comma-separated scenarios: healthz-c50, healthz-c100, node-c50, node-c100, "
                                       "login, reports (and, without --url, healthz = healthz-c100, login-owasp)")
    parser.add_argument("--username", default="demo", help="--url: the user to log in as (default: demo)")
    parser.add_argument("--password", help="--url: default $APIGW_BENCH_PASSWORD or the inventory's password")
    parser.add_argument("--users-file", help="--url: the deployed users file, read only for the login's argon2 cost "
                                             "(default: $APIGW_BASE_DIR or ~/.local/share/apigw, gateway/users.json)")
    parser.add_argument("--workers", type=int, default=2, help="without --url: gateway workers")
    parser.add_argument("--reports-connections", type=int, default=20, help="without --url")
    args = parser.parse_args()
    if args.users_file is None:
        base_dir = os.environ.get("APIGW_BASE_DIR") or os.path.expanduser("~/.local/share/apigw")
        args.users_file = os.path.join(base_dir, "gateway", "users.json")
    prefix = os.environ.get("AUTOCANNON_PREFIX", "/tmp/apigw-bench-node")
    version = ensure_autocannon(prefix)
    if args.url:
        bench_url(args, prefix, version)
    else:
        bench_local(args, prefix, version)


if __name__ == "__main__":
    main()
