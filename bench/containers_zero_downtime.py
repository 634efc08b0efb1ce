"""Zero-downtime proof for the container runtimes (a benchmark, not a test): traffic during the lifecycle playbooks.

    python bench/containers_zero_downtime.py --inventory molecule/swarm/inventory --duration 90
    python bench/containers_zero_downtime.py --inventory molecule/compose/inventory --only restart

Against a stack that playbooks/site.yml deployed with that inventory (the molecule inventories of the `swarm` and
`compose` scenarios: scripts/test-containers.sh, or `ansible-playbook -i <inventory> playbooks/site.yml`), for each
playbook - restart.yml, then update_config.yml (a production.env change: RATE_LIMIT_AUTH_MAX) - it runs, at once:

  - autocannon on GET /healthz (-c 10) and on POST /auth/refresh (-c 5) with a refresh token that is already
    revoked, so that every request goes through the JWT check and a Redis lookup and the right answer is 401;
  - a probe that GETs /healthz every 20 ms (1 s timeout) and records the longest stretch without a 200: the gap;
  - the playbook itself, started 3 s into the load.

It prints, per playbook: its exit status and time, /healthz requests, non-2xx and errors, /auth/refresh requests,
answers other than the expected 401 and errors, and the longest gap. Swarm rolls start-first (old and new replica
listen together on the shared port, SO_REUSEPORT), so the expected figures are 0 / 0 / 0 ms; Compose's restart
restarts every replica at once and is not zero-downtime: the gap is what it costs. Results: bench/results/*.json.
Run it from the collection tree (scripts/collection-tree.sh) with ANSIBLE_COLLECTIONS_PATH set, as the tests do.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from gateway_load import autocannon, ensure_autocannon, post_json  # bench/ is not a package: by path


def inventory_vars(inventory):
    out = subprocess.run(["ansible-inventory", "-i", inventory, "--host", "localhost"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


class GapProbe(threading.Thread):
    """GET /healthz every 20 ms; the longest time between two 200s is the gap clients saw."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop, self.gap, self.failures = url, threading.Event(), 0.0, 0

    def run(self):
        last_ok = time.monotonic()
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url, timeout=1) as response:
                    ok = response.status == 200
            except (OSError, urllib.error.HTTPError):
                ok = False
            now = time.monotonic()
            if ok:
                self.gap = max(self.gap, now - last_ok)
                last_ok = now
            else:
                self.failures += 1
            time.sleep(0.02)


def run_case(name, playbook_args, inventory, base, token, prefix, duration):
    specs = {
        "healthz": {"url": base + "/healthz", "connections": 10, "duration": duration},
        "refresh": {"url": base + "/auth/refresh", "connections": 5, "duration": duration, "method": "POST",
                    "headers": {"content-type": "application/json"}, "body": json.dumps({"refreshToken": token})},
    }
    results = {}
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, autocannon(prefix, specs[k]))) for k in specs]
    probe = GapProbe(base + "/healthz")
    for t in threads + [probe]:
        t.start()
    time.sleep(3)
    started = time.monotonic()
    play = subprocess.run(["ansible-playbook", "-i", inventory, *playbook_args], capture_output=True, text=True,
                          check=False)
    took = time.monotonic() - started
    for t in threads:
        t.join()
    probe.stop.set()
    probe.join()
    h, r = results["healthz"], results["refresh"]
    row = {
        "playbook": name, "rc": play.returncode, "playbook_s": round(took, 1),
        "healthz_requests": h["responses"], "healthz_non2xx": h["non2xx"],
        "healthz_errors": h["errors"] + h["timeouts"],
        "refresh_requests": r["responses"],
        "refresh_unexpected": sum(n for code, n in r["statuses"].items() if code != "401"),
        "refresh_errors": r["errors"] + r["timeouts"],
        "gap_ms": round(probe.gap * 1000), "probe_failures": probe.failures,
    }
    if play.returncode:
        row["playbook_failure"] = [line for line in play.stdout.splitlines() if "fatal:" in line or "msg" in line][-3:]
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", required=True)
    parser.add_argument("--duration", type=int, default=90, help="seconds of load per playbook (longer than it runs)")
    parser.add_argument("--only", default="restart,update_config")
    args = parser.parse_args()
    hostvars = inventory_vars(args.inventory)
    base = f"http://127.0.0.1:{hostvars['gateway_port']}"
    user = hostvars["gateway_users"][0]
    first = post_json(base + "/auth/login", {"username": user["username"], "password": user["password"]})
    post_json(base + "/auth/refresh", {"refreshToken": first["refreshToken"]})  # now revoked: 401 from here on
    prefix = os.environ.get("AUTOCANNON_PREFIX", "/tmp/apigw-bench-node")
    ensure_autocannon(prefix)
    cases = {
        "restart": ["playbooks/restart.yml"],
        "update_config": ["playbooks/update_config.yml", "-e",
                          json.dumps({"env": {"RATE_LIMIT_AUTH_MAX": int(time.time()) % 1000 + 1000}})],
    }
    rows = [run_case(name, cases[name], args.inventory, base, first["refreshToken"], prefix, args.duration)
            for name in args.only.split(",")]
    runtime = hostvars.get("gateway_runtime")
    print(f"\n{runtime}, {hostvars.get('gateway_replicas')} replica(s), load average {os.getloadavg()[0]:.1f}")
    print(f"{'playbook':<14}{'rc':>3}{'time s':>8}{'/healthz':>10}{'non2xx':>8}{'errors':>8}"
          f"{'/refresh':>10}{'not 401':>9}{'errors':>8}{'gap ms':>8}")
    for row in rows:
        print(f"{row['playbook']:<14}{row['rc']:>3}{row['playbook_s']:>8}{row['healthz_requests']:>10}"
              f"{row['healthz_non2xx']:>8}{row['healthz_errors']:>8}{row['refresh_requests']:>10}"
              f"{row['refresh_unexpected']:>9}{row['refresh_errors']:>8}{row['gap_ms']:>8}")
        for line in row.get("playbook_failure", []):
            print("   ", line.strip()[:200])
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    out = os.path.join(HERE, "results", f"containers_zero_downtime-{runtime}.json")
    with open(out, "w") as handle:
        json.dump({"runtime": runtime, "replicas": hostvars.get("gateway_replicas"), "rows": rows}, handle, indent=1)
    print("results:", out)


if __name__ == "__main__":
    main()
