# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: a verified backup with redis_backup (bgsave, replication) against the runbook's
`redis-cli --rdb` + `redis-check-rdb` (its "Manual Backup" + "Verify backup"), and our RDB
verification against `redis-check-rdb`, on 1M rate-limit keys among 1.33M gateway keys.

Not part of the test suite; nothing asserts a time.  Starts its own redis-server through
the test harness (Redis defaults for persistence/replication, e.g. repl-diskless-sync yes
with a 5 s delay), loads the dataset with `redis-cli --pipe`, and runs each contender
`--rounds` times side by side, reporting the median.

    python3 bench/bench_backup.py [--keys 1330000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collection_root():
    root = tempfile.mkdtemp(prefix="apigw-bench-coll-")
    env = dict(os.environ, APIGW_COLLECTION_ROOT=root)
    subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return root


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def dataset(total):
    """Runbook key shapes in the proportions of a busy gateway; yields RESP commands.

    TTLs are at least an hour (longer than a rate-limit window) so that no key expires while the
    contenders run and every round sees the same dataset.
    """
    rnd = random.Random(42)
    # 1,000,000 rate-limit counters among 1,330,000 keys (the proportions of bench_keys.py)
    shares = [("ratelimit:global", 400 / 1330), ("ratelimit:user", 300 / 1330), ("ratelimit:auth", 300 / 1330),
              ("loginfail", 100 / 1330), ("lockout", 30 / 1330), ("token:blacklist", 150 / 1330),
              ("token:user", 50 / 1330)]
    for prefix, share in shares:
        for i in range(int(total * share)):
            ip = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
            if prefix.startswith("ratelimit"):
                subject = ip if prefix != "ratelimit:user" else "user-%d" % i
                yield resp("SET", "%s:%s" % (prefix, subject), rnd.randint(1, 100), "EX", rnd.randint(3600, 7200))
            elif prefix == "loginfail":
                yield resp("SET", "loginfail:user%d:%s" % (i, ip), rnd.randint(1, 5), "EX", 3600)
            elif prefix == "lockout":
                yield resp("SET", "lockout:user%d:%s" % (i, ip), "1", "EX", 3600)
            elif prefix == "token:blacklist":
                yield resp("SET", "token:blacklist:%032x" % rnd.getrandbits(128), "1", "EX", rnd.randint(3600, 604800))
            else:
                yield resp("HSET", "token:user:%d" % i, "%032x" % rnd.getrandbits(128), 1736937000 + i,
                           "%032x" % rnd.getrandbits(128), 1736937600 + i)


def load(server, total):
    proc = subprocess.Popen(server.cli_args() + ["--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    batch = []
    for cmd in dataset(total):
        batch.append(cmd)
        if len(batch) >= 10000:
            proc.stdin.write(b"".join(batch))
            batch = []
    proc.stdin.write(b"".join(batch))
    proc.stdin.close()
    proc.stdout.read()
    proc.wait()


def timed(func):
    start = time.perf_counter()
    out = func()
    return time.perf_counter() - start, out


def server_cpu(pid):
    """CPU seconds used by redis-server and its reaped children (the BGSAVE / replication fork)."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def own_children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measured(server, func):
    """(wall seconds, CPU seconds of redis-server + fork + our child processes, result)."""
    cpu0 = server_cpu(server.pid) + own_children_cpu()
    wall, out = timed(func)
    time.sleep(0.2)  # let redis-server reap its fork child
    return wall, server_cpu(server.pid) + own_children_cpu() - cpu0, out


def run_module(root, module, args):
    env = dict(os.environ, PYTHONPATH=root, ANSIBLE_COLLECTIONS_PATH=root)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    path = os.path.join(root, "ansible_collections", "apigw", "ops", "plugins", "modules", module + ".py")
    proc = subprocess.run([sys.executable, path, handle.name], capture_output=True, text=True, env=env, check=False)
    os.unlink(handle.name)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit("%s failed: %s" % (module, result["msg"]))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1330000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    root = collection_root()
    sys.path.insert(0, root)
    from ansible_collections.apigw.ops.tests.harness.redis_servers import RedisServer
    from ansible_collections.apigw.ops.plugins.module_utils import rdb

    work = tempfile.mkdtemp(prefix="apigw-bench-")
    server = RedisServer().start()
    try:
        elapsed, _loaded = timed(lambda: load(server, args.keys))
        keys = int(server.cli("DBSIZE"))
        print("dataset: %d keys loaded in %.1f s (redis-server %s); %d CPUs, load average %.1f at start" % (
            keys, elapsed, server.cli("INFO", "server").split("redis_version:")[1].split()[0], os.cpu_count(),
            os.getloadavg()[0]))
        ratelimit = sum(int(server.cli("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "ratelimit:%s:*" % scope))
                        for scope in ("global", "user", "auth"))
        print("rate-limit keys: %d of %d" % (ratelimit, keys))
        conn = server.connection()
        runbook = "redis-cli --rdb + redis-check-rdb (runbook)"
        contenders = [("redis_backup method=bgsave", dict(method="bgsave")),
                      ("redis_backup method=replication", dict(method="replication")),
                      ("redis_backup bgsave, check_rdb=never", dict(method="bgsave", check_rdb="never"))]
        times = dict((name, []) for name in [runbook] + [c[0] for c in contenders])
        cpu = dict((name, []) for name in times)
        size = None
        backends = {}
        for round_ in range(args.rounds):
            out = os.path.join(work, "cli-%d.rdb" % round_)

            def runbook_backup(out=out):
                subprocess.run(server.cli_args() + ["--rdb", out], check=True, capture_output=True)
                check = subprocess.run(["redis-check-rdb", out], check=True, capture_output=True, text=True)
                assert "RDB looks OK" in check.stdout

            t, c, _proc = measured(server, runbook_backup)
            times[runbook].append(t)
            cpu[runbook].append(c)
            size = os.path.getsize(out)
            os.unlink(out)
            for name, extra in contenders:
                dest = os.path.join(work, "backup-%d" % round_)
                os.mkdir(dest)
                t, c, res = measured(server, lambda dest=dest, extra=extra: run_module(root, "redis_backup", dict(
                    conn, path=dest, name="bench", prune=False, **extra)))
                manifest = res["manifests"][0]
                assert res["changed"] and manifest["checks"]["crc64"] == "ok" and manifest["verified"]
                times[name].append(t)
                cpu[name].append(c)
                backends[name] = "%s; checks %s; %s keys" % (
                    manifest["crc64_backend"], ", ".join("%s=%s" % kv for kv in sorted(manifest["checks"].items())),
                    manifest["keys_in_file"])
                subprocess.run(["rm", "-rf", dest], check=True)
        print("load average %.1f after the backups" % os.getloadavg()[0])
        print("RDB size: %.1f MB; in-process CRC64 backend of this Python: %s" % (size / 1e6, rdb.CRC64_BACKEND))
        for name, text in backends.items():
            print("  %s: CRC64 by %s" % (name, text))
        base = statistics.median(times[runbook])
        cpu_base = statistics.median(cpu[runbook])
        header = ("verified backup (median of %d)" % args.rounds, "seconds", "ratio", "CPU seconds", "ratio")
        print("\n%-44s %9s %8s %12s %8s" % header)
        for name, values in times.items():
            print("%-44s %9.2f %7.2fx %12.2f %7.2fx" % (
                name, statistics.median(values), statistics.median(values) / base,
                statistics.median(cpu[name]), statistics.median(cpu[name]) / cpu_base))

        # verification of the same file
        path = os.path.join(work, "verify.rdb")
        subprocess.run(server.cli_args() + ["--rdb", path], check=True, capture_output=True)
        with open(path, "rb") as handle:
            data = handle.read()
        vtimes = {"redis-check-rdb (file)": [], "verify_file: redis-check-rdb checks the CRC (default)": [],
                  "verify_file: in-process CRC64 + sha256 (check_rdb=never)": []}
        for _round in range(args.rounds):
            check_cmd = ["redis-check-rdb", path]
            t, proc = timed(lambda cmd=check_cmd: subprocess.run(cmd, capture_output=True, text=True, check=False))
            assert proc.returncode == 0
            vtimes["redis-check-rdb (file)"].append(t)
            t, res = timed(lambda: rdb.verify_file(path, check_rdb="always"))
            assert res["ok"] and res["checks"]["crc64"] == "ok" and res["crc64_backend"] == "redis-check-rdb"
            vtimes["verify_file: redis-check-rdb checks the CRC (default)"].append(t)
            t, res = timed(lambda: rdb.verify_file(path, check_rdb="never"))
            assert res["ok"] and res["checks"]["crc64"] == "ok"
            vtimes["verify_file: in-process CRC64 + sha256 (check_rdb=never)"].append(t)
        sample = data[:8 << 20]
        t_py, _crc = timed(lambda: rdb.crc64_python(sample))
        base = statistics.median(vtimes["redis-check-rdb (file)"])
        print("\n%-60s %9s %8s" % ("verification of %.1f MB" % (len(data) / 1e6), "seconds", "ratio"))
        for name, values in vtimes.items():
            print("%-60s %9.2f %7.2fx" % (name, statistics.median(values), statistics.median(values) / base))
        print("%-60s %9.2f %7.2fx  (extrapolated from 8 MB at %.1f MB/s)" % (
            "CRC64 pure-Python slice-by-8 (fallback)", t_py * len(data) / len(sample),
            t_py * len(data) / len(sample) / base, len(sample) / t_py / 1e6))
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", work, root], check=False)


if __name__ == "__main__":
    main()
