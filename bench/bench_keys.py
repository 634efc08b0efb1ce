# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark of the key procedures against the runbook's own commands, on the same data, in one run.

Not part of the test suite.  Starts its own redis-server (tests/harness/redis_servers.py) on a free
loopback port, loads ~1.33M keys in the gateway's key shapes (1M ``ratelimit:*``) with server-side
Lua loops, and reloads them before each variant:

  (a) runbook  redis-cli --scan --pattern "ratelimit:*" | xargs redis-cli del      (bash)
  (b) module   gateway_ratelimit scope=all confirm_all=true max_keys=0              (the module file run by
               python with its arguments, exactly as Ansible runs it on a host; optionally also via the
               ``ansible`` CLI with --with-ansible-cli)
  (c) floor    SCAN MATCH ratelimit:* COUNT 1000, then UNLINK of the keys found, written straight to one
               connection (no client-library overhead per command, keys never decoded)

then revoking all 1,000 refresh tokens of one user:

  (i)  runbook  for jti in $(redis-cli hkeys token:user:U); do redis-cli setex token:blacklist:$jti 604800 1; done
  (ii) module   gateway_token user_id=U (python running the module file)

Usage: python bench/bench_keys.py [--repeat N] [--with-ansible-cli] [--ratelimit-keys N]
Prints times and ratios; requirements: (b) >= 3x faster than (a), (b) <= 1.3x (c), (ii) >= 20x faster than (i).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))

import redis
import redis_servers

LOAD_SCRIPT = """
local kind, first, last, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = first, last do
  local ip = string.format('10.%d.%d.%d', math.floor(i / 65536) % 256, math.floor(i / 256) % 256, i % 256)
  if kind == 'global' then redis.call('SET', 'ratelimit:global:' .. ip, i % 97 + 1, 'EX', ttl)
  elseif kind == 'auth' then redis.call('SET', 'ratelimit:auth:' .. ip, i % 7 + 1, 'EX', ttl)
  elseif kind == 'user' then redis.call('SET', 'ratelimit:user:user-' .. i, i % 53 + 1, 'EX', ttl)
  elseif kind == 'loginfail' then redis.call('SET', 'loginfail:user' .. i .. ':' .. ip, i % 5 + 1, 'EX', ttl)
  elseif kind == 'lockout' then redis.call('SET', 'lockout:user' .. i .. ':' .. ip, 1, 'EX', ttl)
  elseif kind == 'blacklist' then redis.call('SET', 'token:blacklist:jti-' .. i .. '-aaaaaaaa', 1, 'EX', ttl)
  elseif kind == 'tokens' then
    redis.call('HSET', 'token:user:user-' .. i, 'jti-' .. i .. '-a', ttl, 'jti-' .. i .. '-b', ttl)
  end
end
return last - first + 1
"""
CHUNK = 10000  # keys per Lua call: short enough to stay under the server's busy-script limit


def shapes(ratelimit_keys):
    """(kind, count): 1M ratelimit keys by default among 1.33M."""
    scale = ratelimit_keys / 1000000.0
    return [("global", int(400000 * scale)), ("user", int(300000 * scale)), ("auth", int(300000 * scale)),
            ("loginfail", int(100000 * scale)), ("lockout", int(30000 * scale)),
            ("blacklist", int(150000 * scale)), ("tokens", int(50000 * scale))]


def load(client, ratelimit_keys):
    client.flushall()
    sha = client.script_load(LOAD_SCRIPT)
    for kind, count in shapes(ratelimit_keys):
        for first in range(0, count, CHUNK):
            client.evalsha(sha, 0, kind, first, min(count, first + CHUNK) - 1, 3600)
    exp = int(time.time()) + 3 * 86400
    client.hset("token:user:bench-user", mapping={"bench-jti-%06d" % n: exp for n in range(1000)})
    return client.dbsize()


def collection_root():
    """A collection tree (ansible_collections/apigw/ops) of this checkout, for running the module."""
    root = tempfile.mkdtemp(prefix="apigw-bench-coll-")
    subprocess.run([os.path.join(REPO, "scripts", "collection-tree.sh")], check=True, capture_output=True,
                   env=dict(os.environ, APIGW_COLLECTION_ROOT=root))
    return root


def run_module(root, name, args):
    """Run a module file with python, the way Ansible runs it on the target (args file as argv[1])."""
    path = os.path.join(root, "ansible_collections", "apigw", "ops", "plugins", "modules", name + ".py")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    try:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, path, handle.name], capture_output=True, text=True, check=False,
                              env=dict(os.environ, PYTHONPATH=root))
        elapsed = time.perf_counter() - started
    finally:
        os.unlink(handle.name)
    result = json.loads(proc.stdout)
    if result.get("failed"):
        raise SystemExit("module failed: %s" % result.get("msg"))
    return elapsed, result


def run_ansible_cli(root, name, args):
    ansible = shutil.which("ansible") or os.path.join(os.path.dirname(sys.executable), "ansible")
    started = time.perf_counter()
    proc = subprocess.run([ansible, "localhost", "-c", "local", "-i", "localhost,", "-m", "apigw.ops." + name,
                           "-a", json.dumps(args), "-e", "ansible_python_interpreter=" + sys.executable],
                          capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=root))
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit("ansible failed: %s" % proc.stdout[-500:])
    return elapsed


def floor(port, count=1000, batch=1000):
    """SCAN alone, then UNLINK of the known keys: the least a client can do.

    One connection, commands written straight to it (no per-call client-library overhead), every
    UNLINK batch written before any reply is read, keys never decoded.
    """
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=600)
    connection = client.connection_pool.get_connection()
    started = time.perf_counter()
    keys, cursor = [], b"0"
    while True:
        connection.send_command("SCAN", cursor, "MATCH", "ratelimit:*", "COUNT", count)
        cursor, found = connection.read_response(disable_decoding=True)
        keys.extend(found)
        if cursor == b"0":
            break
    scanned = time.perf_counter()
    for start in range(0, len(keys), batch):
        part = keys[start:start + batch]
        connection.send_packed_command([b"*%d\r\n$6\r\nUNLINK\r\n" % (len(part) + 1)
                                        + b"".join([b"$%d\r\n%s\r\n" % (len(key), key) for key in part])])
    deleted = sum(connection.read_response() for _start in range(0, len(keys), batch))
    done = time.perf_counter()
    client.connection_pool.release(connection)
    return done - started, scanned - started, done - scanned, deleted


def bash(script, port):
    started = time.perf_counter()
    subprocess.run(["bash", "-c", script.replace("PORT", str(port))], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


class CpuMeter:
    """CPU seconds (user+sys) used by this process, its waited-for children and the redis-server:
    a figure the other load on a shared machine does not inflate the way it inflates wall time."""

    def __init__(self, redis_pid):
        self.redis_pid = redis_pid

    def _now(self):
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        with open("/proc/%d/stat" % self.redis_pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        redis_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return own.ru_utime + own.ru_stime, kids.ru_utime + kids.ru_stime, redis_cpu

    def __enter__(self):
        self.start = self._now()
        return self

    def __exit__(self, *exc):
        end = self._now()
        self.client = (end[0] - self.start[0]) + (end[1] - self.start[1])
        self.redis = end[2] - self.start[2]
        self.total = self.client + self.redis


def machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    version = subprocess.run([redis_servers.REDIS_SERVER, "--version"], capture_output=True, text=True,
                             check=True).stdout
    return "%s, %d cores, Python %s, redis-py %s, %s" % (
        cpu, os.cpu_count(), platform.python_version(), redis.__version__, version.split(" sha=")[0].strip())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant (median reported)")
    parser.add_argument("--ratelimit-keys", type=int, default=1000000)
    parser.add_argument("--with-ansible-cli", action="store_true", help="also time `ansible localhost -m ...`")
    args = parser.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally: stop redis-server
    print("machine: %s" % machine())
    server = redis_servers.RedisServer(extra_config={"maxmemory": "0"}).start()
    root = collection_root()
    try:
        client = redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=600)  # FLUSHALL of 1.33M keys is slow
        conn = {"host": "127.0.0.1", "port": server.port}
        total = load(client, args.ratelimit_keys)
        expected_left = total - args.ratelimit_keys
        print("keys loaded: %d (%d ratelimit:*), redis-server on 127.0.0.1:%d" % (total, args.ratelimit_keys,
                                                                                  server.port))
        times = {"a": [], "b": [], "b_cli": [], "c": [], "i": [], "ii": []}
        cpu = dict((k, []) for k in times)
        server_cpu = dict((k, []) for k in times)  # redis-server's share of cpu[k]
        meter = CpuMeter(server.pid)
        details = {}
        for _round in range(args.repeat):
            load(client, args.ratelimit_keys)
            with meter:
                times["a"].append(bash('redis-cli -p PORT --scan --pattern "ratelimit:*" | xargs redis-cli -p PORT del',
                                       server.port))
            cpu["a"].append(meter.total)
            server_cpu["a"].append(meter.redis)
            assert client.dbsize() == expected_left, client.dbsize()

            load(client, args.ratelimit_keys)
            with meter:
                elapsed, result = run_module(root, "gateway_ratelimit", dict(conn, scope="all", confirm_all=True,
                                                                             max_keys=0))
            cpu["b"].append(meter.total)
            server_cpu["b"].append(meter.redis)
            assert result["deleted"] == args.ratelimit_keys and client.dbsize() == expected_left, result
            times["b"].append(elapsed)
            details["module_elapsed"] = result["elapsed"]

            if args.with_ansible_cli:
                load(client, args.ratelimit_keys)
                times["b_cli"].append(run_ansible_cli(root, "gateway_ratelimit", dict(
                    conn, scope="all", confirm_all=True, max_keys=0)))
                assert client.dbsize() == expected_left

            load(client, args.ratelimit_keys)
            with meter:
                elapsed, scan_s, unlink_s, deleted = floor(server.port)
            cpu["c"].append(meter.total)
            server_cpu["c"].append(meter.redis)
            assert deleted == args.ratelimit_keys and client.dbsize() == expected_left
            times["c"].append(elapsed)
            details["floor_scan"], details["floor_unlink"] = scan_s, unlink_s

            client.delete(*client.keys("token:blacklist:bench-jti-*") or ["-"])
            with meter:
                times["i"].append(bash('for jti in $(redis-cli -p PORT hkeys token:user:bench-user); do '
                                       'redis-cli -p PORT setex "token:blacklist:$jti" 604800 1 >/dev/null; done',
                                       server.port))
            cpu["i"].append(meter.total)
            assert len(client.keys("token:blacklist:bench-jti-*")) == 1000
            client.delete(*client.keys("token:blacklist:bench-jti-*"))
            with meter:
                elapsed, result = run_module(root, "gateway_token", dict(conn, user_id="bench-user"))
            cpu["ii"].append(meter.total)
            assert len(result["revoked"]) == 1000 and result["verified"], result
            times["ii"].append(elapsed)
            details["token_elapsed"] = result["elapsed"]

        med = dict((k, statistics.median(v)) for k, v in times.items() if v)
        mcpu = dict((k, statistics.median(v)) for k, v in cpu.items() if v)
        print("\n== clear %d rate-limit counters among %d keys (median of %d) =="
              % (args.ratelimit_keys, total, args.repeat))
        print("(a) runbook redis-cli --scan | xargs del : %7.2f s" % med["a"])
        print("(b) gateway_ratelimit module             : %7.2f s   (Redis work inside: %.2f s)"
              % (med["b"], details["module_elapsed"]))
        if "b_cli" in med:
            print("(b') same via `ansible localhost -m`      : %7.2f s" % med["b_cli"])
        print("(c) floor SCAN, then UNLINK (raw)        : %7.2f s   (scan %.2f s + unlink %.2f s)"
              % (med["c"], details["floor_scan"], details["floor_unlink"]))
        print("module speed-up over runbook (a)/(b)     : %7.1fx  (required >= 3x)" % (med["a"] / med["b"]))
        print("module vs floor (b)/(c)                  : %7.2fx  (required <= 1.3x)" % (med["b"] / med["c"]))
        print("\n== revoke 1,000 refresh tokens of one user (median of %d) ==" % args.repeat)
        print("(i)  runbook redis-cli setex loop        : %7.2f s" % med["i"])
        print("(ii) gateway_token module                : %7.2f s   (Redis work inside: %.3f s)"
              % (med["ii"], details["token_elapsed"]))
        print("module speed-up (i)/(ii)                 : %7.1fx  (required >= 20x)" % (med["i"] / med["ii"]))
        print("\n== CPU seconds (client processes + redis-server; not inflated by other load) ==")
        print("(a) %.2f  (b) %.2f  (c) %.2f  -> (a)/(b) %.1fx, (b)/(c) %.2fx" % (
            mcpu["a"], mcpu["b"], mcpu["c"], mcpu["a"] / mcpu["b"], mcpu["b"] / mcpu["c"]))
        print("(i) %.2f  (ii) %.2f  -> (i)/(ii) %.1fx" % (mcpu["i"], mcpu["ii"], mcpu["i"] / mcpu["ii"]))
        scpu = dict((k, statistics.median(v)) for k, v in server_cpu.items() if v)
        print("\n== the bound: redis-server's own CPU seconds for the clear ==")
        print("(a) %.2f  (b) %.2f  (c) %.2f" % (scpu["a"], scpu["b"], scpu["c"]))
        least = min(scpu["b"], scpu["c"])
        print("Redis runs commands on one thread, so no client that finds the keys with SCAN and removes them with")
        print("UNLINK can finish in less than the server CPU that work takes (the lesser of (b) and (c): %.2f s);"
              % least)
        print("on this machine that caps (a)/(b) at (a) / %.2f s = %.1fx" % (least, med["a"] / least))
        with open("/proc/loadavg") as handle:
            print("load average at the end: %s" % " ".join(handle.read().split()[:3]))
        print("\nraw: %s" % json.dumps(dict((k, [round(x, 3) for x in v]) for k, v in times.items() if v)))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
