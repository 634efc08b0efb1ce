# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real redis-server processes for tests: start on free loopback ports, stop by PID.

Standard library only, so it runs under pytest, ansible-test units, integration
targets (as a script) and molecule alike.  Topologies: standalone, requirepass,
ACL user, TLS (certificates made here with openssl), primary + replica, a
3-primary cluster, and Sentinel (a primary, a replica and 3 sentinels).

Every server lives in its own temp dir (``apigw-redis-*``) that whoever stops it
removes.  A process that dies without stopping its servers (ansible-test's forked
unit-test children skip fixture teardown) leaves its dirs behind; the next harness
process sweeps them (``sweep_stale_dirs``), never one that a running server uses.

Command line (used by the setup_redis integration target and by scripts):

    python redis_servers.py start KIND [--state FILE]   # prints JSON, leaves it running
    python redis_servers.py stop --state FILE           # stops by PID, removes dirs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
PASSWORD = "s3cret-Pass"  # test-only credential
ACL_USER = "apigw-ops"
ACL_PASSWORD = "acl-Pass-1"
SENTINEL_MASTER = "apigw"
KINDS = ("standalone", "password", "acl", "tls", "replica", "cluster", "sentinel")
DIR_PREFIX = "apigw-redis-"
OWNER_FILE = "harness.owner"
# A dir is swept only after this long without a change in it (it may be between a stop and a
# restart of its server, e.g. a restore test; the log and dump.rdb are written on each event).
STALE_AFTER = 600.0


class HarnessError(RuntimeError):
    pass


# Servers started for an in-process test die with the process that started them
# (PR_SET_PDEATHSIG): ansible-test runs each unit test in a forked child that exits
# without running fixture teardown, which would otherwise leave the servers running.
# The command line turns this off, since its servers must outlive it.
DIE_WITH_PARENT = True


def _die_with_parent():
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start_time(pid):
    """The start time (clock ticks since boot) of a live process, None if it is gone or a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError, ValueError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def make_dir(prefix, base_dir=None):
    """A temp dir that records which process made it (pid and start time, so a reused pid
    does not count): the sweep leaves it alone while that process lives."""
    path = tempfile.mkdtemp(prefix=prefix, dir=base_dir)
    with open(os.path.join(path, OWNER_FILE), "w") as handle:
        handle.write("%d %s\n" % (os.getpid(), _start_time(os.getpid())))
    return path


def _owner_alive(path):
    try:
        with open(os.path.join(path, OWNER_FILE)) as handle:
            pid, started = handle.read().split()
    except (OSError, ValueError):
        return False
    return _start_time(int(pid)) == started


def _dirs_in_use():
    """Working dirs of this user's running redis-server/sentinel processes (redis chdirs to its
    dir), and the text of their config files (which name a separate TLS dir, if any)."""
    cwds, configs = set(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as handle:
                if not handle.read().startswith("redis-"):
                    continue
            cwd = os.readlink("/proc/%s/cwd" % entry)
        except OSError:  # gone, or another user's process
            continue
        cwds.add(cwd)
        for name in ("redis.conf", "sentinel.conf"):
            try:
                with open(os.path.join(cwd, name)) as handle:
                    configs.append(handle.read())
            except OSError:
                pass
    return cwds, "\n".join(configs)


def _last_change(path):
    newest = os.lstat(path).st_mtime
    for name in os.listdir(path):
        try:
            newest = max(newest, os.lstat(os.path.join(path, name)).st_mtime)
        except OSError:
            pass
    return newest


def sweep_stale_dirs(base_dir=None, now=None):
    """Remove harness dirs whose servers are gone and whose maker is gone.

    A dir goes only if all hold: the process that made it no longer runs; no running
    redis process works in it or names it in its config; nothing in it changed for
    STALE_AFTER seconds.  Returns the removed paths.
    """
    base_dir = base_dir or tempfile.gettempdir()
    now = time.time() if now is None else now
    uid = os.getuid()
    candidates = []
    try:
        entries = os.listdir(base_dir)
    except OSError:
        return []
    for name in entries:
        path = os.path.join(base_dir, name)
        if not name.startswith(DIR_PREFIX):
            continue
        try:
            info = os.lstat(path)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or _owner_alive(path):
                continue
            if now - _last_change(path) < STALE_AFTER:
                continue
        except OSError:
            continue
        candidates.append(path)
    if not candidates:
        return []
    cwds, configs = _dirs_in_use()
    removed = []
    for path in candidates:
        if path in cwds or any(cwd.startswith(path + os.sep) for cwd in cwds) or path + os.sep in configs:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


_SWEPT = False


def _sweep_once():
    """The first server a process makes sweeps what earlier processes left behind."""
    global _SWEPT  # noqa: PLW0603  # pylint: disable=global-statement
    if not _SWEPT:
        _SWEPT = True
        try:
            sweep_stale_dirs()
        except OSError:
            pass


def free_port(exclude=()):
    """A loopback port that is free now, and whose cluster bus port (+10000) is free too."""
    for _attempt in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port in exclude or port + 10000 > 65535:
            continue
        try:
            with socket.socket() as bus:
                bus.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise HarnessError("no free port pair found")


def _raw_command(host, port, *args, password=None, username=None, timeout=2.0):
    """Send one RESP command over a plain socket; return the first reply line (text)."""
    def encode(parts):
        out = [b"*%d\r\n" % len(parts)]
        for part in parts:
            data = part if isinstance(part, bytes) else str(part).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    with socket.create_connection((host, port), timeout=timeout) as sock:
        payload = b""
        if password is not None:
            payload += encode(["AUTH", username, password] if username else ["AUTH", password])
        payload += encode(list(args))
        sock.sendall(payload)
        data = b""
        expected = 2 if password is not None else 1
        while data.count(b"\r\n") < expected:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n")[expected - 1].decode(errors="replace")


class RedisServer:
    """One redis-server process in its own temp dir."""

    def __init__(self, password=None, acl_user=None, tls=None, cluster=False, replicaof=None,
                 extra_config=None, port=None, base_dir=None):
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.password = password
        self.username = None
        self.acl_user = acl_user
        self.tls = tls  # dict with ca, cert, key paths, or None
        self.cluster = cluster
        self.replicaof = replicaof
        self.extra_config = dict(extra_config or {})
        _sweep_once()
        self.dir = make_dir("%s%d-" % (DIR_PREFIX, self.port), base_dir)
        self.pid = None
        self.process = None

    # -- lifecycle -------------------------------------------------------
    def config_lines(self):
        lines = [
            "bind 127.0.0.1",
            "protected-mode no",
            "daemonize no",
            "dir %s" % self.dir,
            "dbfilename dump.rdb",
            "logfile %s" % os.path.join(self.dir, "redis.log"),
            "save \"\"",
            "appendonly no",
        ]
        if self.tls:
            lines += [
                "port 0",
                "tls-port %d" % self.port,
                "tls-cert-file %s" % self.tls["cert"],
                "tls-key-file %s" % self.tls["key"],
                "tls-ca-cert-file %s" % self.tls["ca"],
                "tls-auth-clients optional",
            ]
        else:
            lines.append("port %d" % self.port)
        if self.password:
            lines.append("requirepass %s" % self.password)
            lines.append("masterauth %s" % self.password)
        if self.acl_user:
            user, secret = self.acl_user
            lines.append("user %s on >%s ~* &* +@all" % (user, secret))
            lines.append("user default off")
        if self.cluster:
            lines += ["cluster-enabled yes", "cluster-config-file nodes.conf",
                      "cluster-node-timeout 2000"]
        if self.replicaof:
            lines.append("replicaof %s %d" % self.replicaof)
            if self.acl_user:
                lines.append("masteruser %s" % self.acl_user[0])
                lines.append("masterauth %s" % self.acl_user[1])
        for key, value in self.extra_config.items():
            lines.append("%s %s" % (key, value))
        return lines

    @property
    def config_path(self):
        return os.path.join(self.dir, "redis.conf")

    def command(self):
        return [REDIS_SERVER, self.config_path]

    def start(self, timeout=15.0, write_config=True):
        """Start; ``write_config=False`` keeps redis.conf as it is (edited by the code under test)."""
        if write_config or not os.path.exists(self.config_path):
            with open(self.config_path, "w") as handle:
                handle.write("\n".join(self.config_lines()) + "\n")
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_die_with_parent if DIE_WITH_PARENT else None)  # noqa: PLW1509 (no threads start servers)
        self.pid = self.process.pid
        try:
            self.wait_ready(timeout)
        except HarnessError:
            self.stop(remove=False)
            raise
        return self

    def ping(self):
        if self.tls:
            return self.cli("PING").strip()
        password = self.password
        username = None
        if self.acl_user:
            username, password = self.acl_user
        return _raw_command(self.host, self.port, "PING", password=password, username=username)

    def wait_ready(self, timeout=15.0):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise HarnessError("redis-server on port %d exited: %s" % (self.port, self.log_tail()))
            try:
                last = self.ping()
                if last.endswith("PONG"):
                    return
            except (OSError, subprocess.SubprocessError, HarnessError) as exc:
                last = str(exc)
            time.sleep(0.05)
        raise HarnessError("redis-server on port %d not ready: %s" % (self.port, last))

    def log_tail(self, lines=5):
        try:
            with open(os.path.join(self.dir, "redis.log")) as handle:
                return " | ".join(handle.read().splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, remove=True):
        """Stop by PID (SIGTERM, then SIGKILL), then remove the temp dir."""
        if self.pid:
            _stop_pid(self.pid)
            if self.process is not None:
                try:
                    self.process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            self.pid = None
        if remove:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self):
        """SIGKILL the server (simulate a crash); the dir stays for a restart."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            if self.process is not None:
                self.process.wait(timeout=5)
            self.pid = None

    def restart(self):
        self.stop(remove=False)
        return self.start()

    # -- use -------------------------------------------------------------
    def cli_args(self):
        args = [REDIS_CLI, "-h", self.host, "-p", str(self.port)]
        if self.tls:
            args += ["--tls", "--cacert", self.tls["ca"], "--cert", self.tls["cert"], "--key", self.tls["key"]]
        if self.acl_user:
            args += ["--user", self.acl_user[0], "--pass", self.acl_user[1]]
        elif self.password:
            args += ["-a", self.password]
        args.append("--no-auth-warning")
        return args

    def cli(self, *command, check=True):
        """Run redis-cli against this server; returns stdout."""
        proc = subprocess.run(self.cli_args() + [str(c) for c in command],
                              capture_output=True, text=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise HarnessError("redis-cli %s failed: %s" % (command, proc.stderr.strip()))
        return proc.stdout

    def url(self):
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.acl_user:
            auth = "%s:%s@" % self.acl_user
        elif self.password:
            auth = ":%s@" % self.password
        return "%s://%s%s:%d/0" % (scheme, auth, self.host, self.port)

    def connection(self):
        """Connection details as module options (what an Ansible task would pass)."""
        info = {"host": self.host, "port": self.port}
        if self.acl_user:
            info["redis_username"], info["password"] = self.acl_user
        elif self.password:
            info["password"] = self.password
        if self.tls:
            info.update(tls=True, ca_path=self.tls["ca"], client_cert=self.tls["cert"],
                        client_key=self.tls["key"])
        return info

    def describe(self):
        return {"pid": self.pid, "dir": self.dir, "port": self.port, "host": self.host,
                "connection": self.connection(), "url": self.url(), "config": self.config_path,
                "cli": self.cli_args()}


class RedisSentinel(RedisServer):
    """One sentinel (``redis-server --sentinel``) monitoring a primary as ``master_name``.

    It asks for ``password`` itself only if given (``requirepass``); it authenticates to the
    data nodes with the primary's credentials (``sentinel auth-user``/``auth-pass``), and
    speaks TLS (``tls-replication``) when the primary does.
    """

    def __init__(self, primary, master_name=SENTINEL_MASTER, quorum=2, password=None, **kwargs):
        super().__init__(password=password, tls=primary.tls, **kwargs)
        self.primary = primary
        self.master_name = master_name
        self.quorum = quorum

    @property
    def config_path(self):
        return os.path.join(self.dir, "sentinel.conf")

    def command(self):
        return [REDIS_SERVER, self.config_path, "--sentinel"]

    def config_lines(self):
        name = self.master_name
        lines = [
            "bind 127.0.0.1",
            "protected-mode no",
            "daemonize no",
            "dir %s" % self.dir,
            "logfile %s" % os.path.join(self.dir, "redis.log"),
        ]
        if self.tls:
            lines += [
                "port 0",
                "tls-port %d" % self.port,
                "tls-cert-file %s" % self.tls["cert"],
                "tls-key-file %s" % self.tls["key"],
                "tls-ca-cert-file %s" % self.tls["ca"],
                "tls-auth-clients optional",
                "tls-replication yes",
            ]
        else:
            lines.append("port %d" % self.port)
        if self.password:
            lines.append("requirepass %s" % self.password)
        lines += [
            "sentinel monitor %s %s %d %d" % (name, self.primary.host, self.primary.port, self.quorum),
            "sentinel down-after-milliseconds %s 2000" % name,
            "sentinel failover-timeout %s 10000" % name,
        ]
        if self.primary.acl_user:
            lines.append("sentinel auth-user %s %s" % (name, self.primary.acl_user[0]))
            lines.append("sentinel auth-pass %s %s" % (name, self.primary.acl_user[1]))
        elif self.primary.password:
            lines.append("sentinel auth-pass %s %s" % (name, self.primary.password))
        return lines

    def master_state(self):
        """SENTINEL MASTER as a dict of str (flags, num-slaves, num-other-sentinels, ...)."""
        return _pairs(self.cli("SENTINEL", "MASTER", self.master_name))

    def replicas_state(self):
        """SENTINEL REPLICAS as a list of dicts of str."""
        lines = self.cli("SENTINEL", "REPLICAS", self.master_name).splitlines()
        # redis-cli prints the nested reply flat: each replica is a run of name/value lines
        # starting with "name"
        replicas, current = [], []
        for line in lines:
            if line == "name" and current:
                replicas.append(_pairs("\n".join(current)))
                current = []
            current.append(line)
        if current:
            replicas.append(_pairs("\n".join(current)))
        return replicas


def _pairs(text):
    lines = text.splitlines()
    return dict(zip(lines[0::2], lines[1::2]))


def _stop_pid(pid, timeout=10.0):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            # not our child (started by another process): poll until it is gone or a zombie
            # that its new parent has not reaped yet
            if _start_time(pid) is None:
                return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def make_tls_material(directory):
    """A CA and a server/client certificate for 127.0.0.1 / localhost, made with openssl."""
    os.makedirs(directory, exist_ok=True)
    ca_key, ca = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.crt")
    key, csr, cert = (os.path.join(directory, n) for n in ("redis.key", "redis.csr", "redis.crt"))
    ext = os.path.join(directory, "san.ext")
    with open(ext, "w") as handle:
        handle.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                     "extendedKeyUsage=serverAuth,clientAuth\n")

    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
        "-days", "2", "-subj", "/CN=apigw-ops test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
        "-subj", "/CN=localhost")
    run("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "2", "-extfile", ext)
    return {"ca": ca, "cert": cert, "key": key, "dir": directory}


class Topology:
    """A set of servers started together (what one KIND means)."""

    def __init__(self, kind, servers, tls_dir=None, sentinels=()):
        self.kind = kind
        self.servers = servers  # data nodes; the first is the primary (as started)
        self.tls_dir = tls_dir
        self.sentinels = list(sentinels)

    @property
    def primary(self):
        return self.servers[0]

    @property
    def primaries(self):
        """The servers that hold the keyspace between them (every node of a cluster)."""
        return self.servers if self.kind == "cluster" else self.servers[:1]

    def connection(self):
        info = self.primary.connection()
        if self.kind == "cluster":
            info["mode"] = "cluster"
        if self.sentinels:
            del info["host"], info["port"]
            info.update(mode="sentinel", sentinel_master=self.sentinels[0].master_name,
                        sentinel_hosts=["%s:%d" % (s.host, s.port) for s in self.sentinels])
        return info

    def stop(self):
        for server in self.sentinels + self.servers:
            server.stop()
        if self.tls_dir:
            shutil.rmtree(self.tls_dir, ignore_errors=True)

    def describe(self):
        return {"kind": self.kind, "connection": self.connection(),
                "servers": [s.describe() for s in self.servers], "tls_dir": self.tls_dir,
                "primaries": [s.describe() for s in self.primaries],
                "sentinels": [s.describe() for s in self.sentinels],
                "pids": [s.pid for s in self.servers + self.sentinels]}


def start_standalone(**kwargs):
    return RedisServer(**kwargs).start()


def start_password(**kwargs):
    return RedisServer(password=PASSWORD, **kwargs).start()


def start_acl(**kwargs):
    return RedisServer(acl_user=(ACL_USER, ACL_PASSWORD), **kwargs).start()


def start_tls(tls_dir=None, **kwargs):
    tls_dir = tls_dir or make_dir(DIR_PREFIX + "tls-")
    material = make_tls_material(tls_dir)
    return RedisServer(tls=material, **kwargs).start()


def start_replica_pair(**kwargs):
    replica_config = dict(kwargs.pop("extra_config", None) or {})
    # a diskless full sync starts at once, not after the default 5 s wait for more replicas
    primary = RedisServer(extra_config=dict(replica_config, **{"repl-diskless-sync-delay": 0}),
                          **kwargs).start()
    if kwargs.get("tls"):
        replica_config["tls-replication"] = "yes"
    try:
        replica = RedisServer(replicaof=(primary.host, primary.port), extra_config=replica_config,
                              **kwargs).start()
    except Exception:
        primary.stop()
        raise
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "master_link_status:up" in replica.cli("INFO", "replication"):
            return primary, replica
        time.sleep(0.1)
    primary.stop()
    replica.stop()
    raise HarnessError("replica did not sync with its primary")


def start_sentinel(sentinels=3, password=PASSWORD, sentinel_password=None, master_name=SENTINEL_MASTER,
                   peers=False, **kwargs):
    """A primary with one replica (both asking ``password``) and N sentinels monitoring the
    primary as ``master_name`` (asking ``sentinel_password``, none by default: the common setup,
    where clients authenticate to the data nodes only).  Waits until every sentinel sees the
    primary up and the replica up, and with ``peers`` every other sentinel too (for a quorum to
    fail a dead primary over; the sentinels find each other within about 2 s).  Returns (primary, replica, sentinels).
    """
    primary, replica = start_replica_pair(password=password, **kwargs)
    watchers = []
    try:
        used = {primary.port, replica.port}
        for _index in range(sentinels):
            port = free_port(exclude=used)
            used.add(port)
            watchers.append(RedisSentinel(primary, master_name=master_name, quorum=sentinels // 2 + 1,
                                          password=sentinel_password, port=port,
                                          base_dir=kwargs.get("base_dir")).start())
        wait_sentinels(watchers, replicas=1, peers=peers)
    except Exception:
        for server in watchers + [replica, primary]:
            server.stop()
        raise
    return primary, replica, watchers


def start_sentinel_topology(tls=False, **kwargs):
    """start_sentinel() as a Topology; ``tls=True`` makes certificates and runs every node on TLS."""
    tls_dir = None
    try:
        if tls:
            tls_dir = make_dir(DIR_PREFIX + "tls-")
            kwargs["tls"] = make_tls_material(tls_dir)
        primary, replica, sentinels = start_sentinel(**kwargs)
    except Exception:
        if tls_dir:
            shutil.rmtree(tls_dir, ignore_errors=True)
        raise
    return Topology("sentinel", [primary, replica], tls_dir=tls_dir, sentinels=sentinels)


def wait_failover(sentinels, new_primary, timeout=60.0):
    """Until every sentinel names ``new_primary`` as the master and it has taken the role."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        named = {tuple(s.cli("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.master_name).split()) for s in sentinels}
        if named == {(new_primary.host, str(new_primary.port))} \
                and "role:master" in new_primary.cli("INFO", "replication"):
            return
        time.sleep(0.1)
    raise HarnessError("the sentinels did not fail over to %d" % new_primary.port)


def wait_sentinels(sentinels, replicas=1, peers=True, timeout=30.0):
    """Until every sentinel sees its master up, ``replicas`` replicas up, and (``peers``) every other sentinel."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            ready = True
            for sentinel in sentinels:
                master = sentinel.master_state()
                seen = [r for r in sentinel.replicas_state() if r.get("flags") == "slave"
                        and r.get("master-link-status") == "ok"]
                last = "%d: flags=%s replicas=%d other-sentinels=%s" % (
                    sentinel.port, master.get("flags"), len(seen), master.get("num-other-sentinels"))
                if master.get("flags") != "master" or len(seen) < replicas \
                        or (peers and int(master.get("num-other-sentinels", 0)) < len(sentinels) - 1):
                    ready = False
                    break
            if ready:
                return
        except (HarnessError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise HarnessError("sentinels did not see the master, its replica and each other: %s" % last)


def start_cluster(primaries=3, **kwargs):
    """A cluster of N primaries (no replicas) made with redis-cli --cluster create."""
    used = set()
    nodes = []
    try:
        for _index in range(primaries):
            port = free_port(exclude=used)
            used.add(port)
            nodes.append(RedisServer(cluster=True, port=port, **kwargs).start())
        addresses = ["%s:%d" % (n.host, n.port) for n in nodes]
        auth = ["-a", nodes[0].password, "--no-auth-warning"] if nodes[0].password else []
        proc = subprocess.run([REDIS_CLI] + auth + ["--cluster", "create"] + addresses +
                              ["--cluster-replicas", "0", "--cluster-yes"],
                              capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise HarnessError("cluster create failed: %s" % proc.stdout[-500:])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in nodes):
                return nodes
            time.sleep(0.1)
        raise HarnessError("cluster did not reach cluster_state:ok")
    except Exception:
        for node in nodes:
            node.stop()
        raise


def start_topology(kind):
    if kind == "standalone":
        return Topology(kind, [start_standalone()])
    if kind == "password":
        return Topology(kind, [start_password()])
    if kind == "acl":
        return Topology(kind, [start_acl()])
    if kind == "tls":
        tls_dir = make_dir(DIR_PREFIX + "tls-")
        return Topology(kind, [start_tls(tls_dir=tls_dir)], tls_dir=tls_dir)
    if kind == "replica":
        return Topology(kind, list(start_replica_pair()))
    if kind == "cluster":
        return Topology(kind, start_cluster())
    if kind == "sentinel":
        return start_sentinel_topology()
    raise HarnessError("unknown kind %r (choose from %s)" % (kind, ", ".join(KINDS)))


def stop_described(description):
    """Stop what describe() recorded (used from another process): by PID, then remove dirs."""
    for server in description.get("sentinels", []) + description.get("servers", []):
        if server.get("pid"):
            _stop_pid(server["pid"])
        shutil.rmtree(server["dir"], ignore_errors=True)
    if description.get("tls_dir"):
        shutil.rmtree(description["tls_dir"], ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start")
    start.add_argument("kinds", nargs="+", choices=KINDS)
    start.add_argument("--state", help="write the JSON description to this file too")
    stop = sub.add_parser("stop")
    stop.add_argument("--state", required=True)
    args = parser.parse_args(argv)
    global DIE_WITH_PARENT  # noqa: PLW0603  # pylint: disable=global-statement
    DIE_WITH_PARENT = False

    if args.action == "start":
        started = {}
        try:
            for kind in args.kinds:
                started[kind] = start_topology(kind)
        except Exception:
            for topo in started.values():
                topo.stop()
            raise
        # the servers are children of this short-lived process; start_new_session keeps them alive
        description = {kind: topo.describe() for kind, topo in started.items()}
        text = json.dumps(description, indent=1, sort_keys=True)
        if args.state:
            with open(args.state, "w") as handle:
                handle.write(text)
        print(text)
        return 0
    with open(args.state) as handle:
        description = json.load(handle)
    for topo in description.values():
        stop_described(topo)
    os.unlink(args.state)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
