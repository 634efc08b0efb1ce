"""Key rotation across workers: the Node `jose` client of bench/rotation_race.mjs runs while
playbooks/rotate_jwt_keys.yml rotates (and finally retires) the keys of a real gateway with 2+ workers.
Not part of the test suite.

    python bench/rotation_race.py [--rotations 2] [--workers 2] [--concurrency 3] [--min-loops 1000] [--keep]

The gateway is deployed by the gateway role (tests/roles/playbooks/gateway_only.yml: supervisord, one replica,
--workers workers, the mock upstream) in a base directory of its own, on free ports, against a real redis-server
(tests/harness), with the rate limits lifted for the client through the gateway's env (gateway_env
RATE_LIMIT_*_MAX=1000000): the shared deployment on :8080 keeps its limits (the demo tour expects them). The
rotations are the real playbook with the default phase (rotate), one jwt_rotation_id each, then one retire with
jwt_rotation_now past the overlap. jose is pinned by tests/jose/setup.sh (jose 5: runs on Node 18 without global
WebCrypto) and installed where it installs it. Prints loops, failures, kids seen; writes
bench/results/rotation_race-<time>.json.
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

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [REPO]

from tests.harness.redis_servers import free_port, start_standalone

USER, PASSWORD = "demo", "demo-password-change-me"  # the local inventory's gateway_users
OVERLAP = 604800 + 3600  # the role's default overlap (refresh lifetime + JWKS cache time)


def jose_dir():
    """tests/jose/setup.sh installs the pinned jose (tests/output/node or $APIGW_JOSE_DIR); the client goes there."""
    directory = subprocess.run(["sh", os.path.join(REPO, "tests", "jose", "setup.sh")], check=True,
                               capture_output=True, text=True).stdout.strip().splitlines()[-1]
    shutil.copy(os.path.join(HERE, "rotation_race.mjs"), os.path.join(directory, "rotation_race.mjs"))
    with open(os.path.join(directory, "node_modules", "jose", "package.json")) as handle:
        return directory, json.load(handle)["version"]


class Stack:
    """Redis (harness) + the gateway and the mock upstream deployed by the gateway role in a base directory."""

    def __init__(self, workers):
        self.root = tempfile.mkdtemp(prefix="apigw-bench-collections-")
        self.tree = subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], check=True, text=True,
                                   capture_output=True, env=dict(os.environ, APIGW_COLLECTION_ROOT=self.root)
                                   ).stdout.strip()
        self.base_dir = tempfile.mkdtemp(prefix="apigw-bench-rotation-")
        self.redis = start_standalone()
        self.port = free_port()
        limits = {f"RATE_LIMIT_{scope}_MAX": 1000000 for scope in ("GLOBAL", "USER", "AUTH")}
        self.vars = ["-e", f"gateway_port={self.port}", "-e", f"gateway_upstream_port={free_port()}",
                     "-e", f"gateway_redis_port={self.redis.port}", "-e", f"gateway_workers={workers}",
                     "-e", f"gateway_venv_dir={sys.prefix}",  # packages and supervisor are here: no download
                     "-e", json.dumps({"gateway_env": limits})]
        self.url = f"http://127.0.0.1:{self.port}"

    def play(self, playbook, *extra):
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=self.root, ANSIBLE_NOCOLOR="1", APIGW_BASE_DIR=self.base_dir,
                   ANSIBLE_CONFIG=os.path.join(self.tree, "ansible.cfg"))
        args = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                "-i", os.path.join(self.tree, "inventories", "local"),
                playbook if os.path.isabs(playbook) else os.path.join(self.tree, playbook), *self.vars, *extra]
        started = time.monotonic()
        result = subprocess.run(args, env=env, cwd=self.tree, capture_output=True, text=True, check=False)
        return result, round(time.monotonic() - started, 1)

    def stop(self, keep):
        pidfile = os.path.join(self.base_dir, "supervisor", "supervisord.pid")
        if os.path.exists(pidfile):
            with open(pidfile) as handle:
                pid = int(handle.read().strip())
            try:
                os.kill(pid, signal.SIGTERM)
                for _attempt in range(300):
                    os.kill(pid, 0)
                    time.sleep(0.1)
            except ProcessLookupError:
                pass
        self.redis.stop()
        shutil.rmtree(self.root, ignore_errors=True)
        if not keep:
            shutil.rmtree(self.base_dir, ignore_errors=True)


def report_line(output):
    for line in output.splitlines():
        if '"msg": "Key set' in line or "not every gateway worker" in line:
            return line.strip().removeprefix('"msg": ')[:400]
    return output.strip().splitlines()[-1][:400] if output.strip() else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rotations", type=int, default=2, help="rotations (default phase) during the run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=3, help="client loops in parallel")
    parser.add_argument("--min-loops", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the base directory (logs, keys) for a look")
    args = parser.parse_args()

    directory, jose_version = jose_dir()
    stack = Stack(args.workers)
    client = None
    try:
        result, seconds = stack.play(os.path.join(REPO, "tests", "roles", "playbooks", "gateway_only.yml"))
        if result.returncode:
            sys.exit("deploy failed: " + (result.stdout + result.stderr)[-2000:])
        print(f"gateway deployed by the role on {stack.url} ({args.workers} workers) in {seconds} s; "
              f"jose {jose_version}")
        client = subprocess.Popen(["node", os.path.join(directory, "rotation_race.mjs"), stack.url, USER, PASSWORD,
                                   "--concurrency", str(args.concurrency), "--min-loops", str(args.min_loops)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=directory)
        time.sleep(5)
        stamp = time.strftime("%Y%m%d%H%M%S")
        plays = []
        for index in range(args.rotations):
            result, seconds = stack.play("playbooks/rotate_jwt_keys.yml",
                                         "-e", f"jwt_rotation_id=bench-{stamp}-{index}")
            plays.append({"phase": "rotate", "rc": result.returncode, "seconds": seconds,
                          "report": report_line(result.stdout + result.stderr)})
            print(f"rotate {index + 1}: rc={result.returncode} {seconds} s  {plays[-1]['report']}")
        result, seconds = stack.play("playbooks/rotate_jwt_keys.yml", "-e", "jwt_rotation_phase=retire",
                                     "-e", f"jwt_rotation_now={int(time.time()) + OVERLAP + 60}")
        plays.append({"phase": "retire", "rc": result.returncode, "seconds": seconds,
                      "report": report_line(result.stdout + result.stderr)})
        print(f"retire: rc={result.returncode} {seconds} s  {plays[-1]['report']}")
        time.sleep(3)
        out, _unused = client.communicate(input="", timeout=3600)  # stdin closes: it stops at --min-loops or later
        stats = json.loads(out.strip().splitlines()[-1])
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        stack.stop(args.keep)
    summary = {"loops": stats["loops"], "failures": stats["failures"], "by_step": stats["byStep"],
               "samples": stats["samples"], "signed_kids": stats["signedKids"], "jwks_seen": stats["jwksSeen"],
               "seconds": stats["seconds"], "concurrency": stats["concurrency"], "workers": args.workers,
               "jose": jose_version, "node": subprocess.run(["node", "--version"], capture_output=True, text=True,
                                                            check=False).stdout.strip(),
               "plays": plays, "load_average": os.getloadavg()}
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    path = os.path.join(HERE, "results", f"rotation_race-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(path, "w") as handle:
        json.dump(summary, handle, indent=2)
    print(f"loops {summary['loops']}, failures {summary['failures']} {summary['by_step'] or ''}, "
          f"{summary['seconds']} s, concurrency {summary['concurrency']}, {args.workers} workers")
    print("tokens signed with: " + ", ".join(f"{kid[:12]}… {n}" for kid, n in summary["signed_kids"].items()))
    print("JWKS seen (kid lists, sampled 1/s): " + "; ".join(
        f"[{', '.join(k[:12] + '…' for k in kids.split(','))}] {n}" for kids, n in summary["jwks_seen"].items()))
    print(f"results: {os.path.relpath(path, REPO)}")
    return 0 if all(play["rc"] == 0 for play in plays) else 1


if __name__ == "__main__":
    sys.exit(main())
