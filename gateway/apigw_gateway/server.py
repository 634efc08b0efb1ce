"""Process management: one foreground command runs the gateway with N worker processes.

    python -m apigw_gateway --env-file production.env [--workers N] [--port P]

The parent binds the listening socket, forks the workers (each a uvicorn server on the shared
socket), restarts a worker that dies, forwards SIGHUP (key reload) and SIGTERM/SIGINT (drain and
exit) to them, and exits 0 once they are gone.  With one worker there is no parent: the single
process serves directly.  Config comes only from the environment / env file.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import shutil
import signal
import socket
import sys
import tempfile
import time

from . import logs
from .config import ConfigError, Settings, load_env_file

PR_SET_PDEATHSIG = 1


class DrainingServer:
    """uvicorn.Server that, on the first SIGTERM, reports draining and waits SHUTDOWN_DELAY_MS first."""

    def __new__(cls, config, delay_s):
        import uvicorn

        from .app import PROCESS

        class _Server(uvicorn.Server):
            drain_started = None

            def handle_exit(self, sig, frame):
                PROCESS.draining = True
                if delay_s > 0 and sig == signal.SIGTERM:
                    if self.drain_started is None:
                        self.drain_started = time.monotonic()
                        logs.log("info", "Draining", delay_ms=int(delay_s * 1000))
                    return  # a repeated SIGTERM (e.g. parent and process group) changes nothing
                super().handle_exit(sig, frame)

            async def on_tick(self, counter):
                logs.flush()  # batched access-log lines, at most one tick (0.1 s) late
                if self.drain_started is not None and time.monotonic() - self.drain_started >= delay_s:
                    self.should_exit = True
                return await super().on_tick(counter)

        return _Server(config)


def server_impl():
    """(loop, http) this process serves with: uvloop and httptools (the `fast` extra) where they import,
    else the pure-Python asyncio and h11.  Reported in the log and in /metrics (gateway_server_info)."""
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    try:
        import httptools  # noqa: F401

        http = "httptools"
    except ImportError:
        http = "h11"
    return loop, http


def _uvicorn_config(settings: Settings, loop="asyncio", http="h11"):
    import uvicorn

    return uvicorn.Config("apigw_gateway.app:create_app", factory=True, loop=loop, http=http, lifespan="on",
                          log_config=None, access_log=False, server_header=False, proxy_headers=False,
                          timeout_graceful_shutdown=settings.shutdown_timeout_ms / 1000, timeout_keep_alive=5,
                          backlog=2048, log_level=settings.log_level.lower())


def serve_worker(sock, settings):
    """Run one uvicorn server on an already bound socket until SIGTERM/SIGINT; returns the exit code."""
    logs.configure(settings.log_level)
    # uvicorn re-raises the signal it stopped on after a graceful stop; ignoring it keeps the exit code 0
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop, http = server_impl()
    from . import metrics

    metrics.set_server_info(loop, http)
    logs.log("info", "Serving", loop=loop, http=http,
             tcp_nodelay=sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
    server = DrainingServer(_uvicorn_config(settings, loop, http), settings.shutdown_delay_ms / 1000)
    try:
        server.run(sockets=[sock])
    finally:
        logs.flush()
    return 0 if server.started else 3


def bind(host, port):
    """The listening socket every worker accepts on; its connections send small responses without delay.

    uvicorn writes a response's head and body in two send()s.  With Nagle's algorithm on, the body
    waits until the client ACKs the head, and a keep-alive client delays that ACK (40 ms on Linux):
    ~44 ms per request whatever the load.  asyncio's transports switch Nagle off (TCP_NODELAY) only
    on sockets whose `proto` is IPPROTO_TCP, and an accepted socket takes its `proto` from the
    listener, so the listener is made with an explicit IPPROTO_TCP; it also gets TCP_NODELAY
    itself, which Linux copies to every accepted connection, whatever the event loop (uvloop sets
    it on its own).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # replicas of one container service on the host network share the port (Swarm start-first updates)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    def __init__(self, settings, sock, workers):
        self.settings = settings
        self.sock = sock
        self.count = workers
        self.children = {}  # pid -> start time
        self.stopping = False
        self.failures = 0

    def spawn(self):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # worker
            code = 1
            try:
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                # until the app installs its reload handler, a SIGHUP must not kill the worker
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                _die_with_parent()
                code = serve_worker(self.sock, self.settings)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException as exc:  # report, then leave the worker
                logs.log("error", "Worker crashed", error=repr(exc))
            finally:
                os._exit(code)
        self.children[pid] = time.monotonic()
        return pid

    def forward(self, sig):
        for pid in list(self.children):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def run(self):
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, lambda *_: self.forward(signal.SIGHUP))
        logs.log("info", "Gateway starting", workers=self.count, port=self.settings.port)
        for _attempt in range(self.count):
            self.spawn()
        deadline = None
        while self.children:
            if self.stopping and deadline is None:
                self.forward(signal.SIGTERM)
                deadline = time.monotonic() + (self.settings.shutdown_delay_ms + self.settings.shutdown_timeout_ms) \
                    / 1000 + 5
            self._reap()
            if deadline is not None and time.monotonic() > deadline:
                logs.log("error", "Workers did not stop in time; killing them", pids=sorted(self.children))
                self.forward(signal.SIGKILL)
                deadline = time.monotonic() + 5
            time.sleep(0.05)
        logs.log("info", "Gateway stopped")
        return 0

    def _on_stop(self, *_):
        self.stopping = True

    def _reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            started = self.children.pop(pid, None)
            if started is None:
                continue
            _mark_dead(pid)
            if self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            logs.log("error", "Worker exited unexpectedly; restarting it", pid=pid, code=code)
            # a worker that keeps dying at start-up (e.g. bad config) is restarted with a growing pause
            self.failures = self.failures + 1 if time.monotonic() - started < 5 else 0
            time.sleep(min(5.0, 0.2 * self.failures))
            if not self.stopping:
                self.spawn()


def _die_with_parent():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _mark_dead(pid):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _prepare_metrics_dir(workers):
    """Return the metrics directory if this process made it (and so should remove it at exit)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    made = None
    if not directory and workers > 1:
        directory = made = tempfile.mkdtemp(prefix="apigw-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    if directory:
        os.makedirs(directory, exist_ok=True)
        # counters restart at zero with the process, as they do in single-process mode
        for stale in glob.glob(os.path.join(directory, "*.db")):
            os.unlink(stale)
    return made


def check_config(settings):
    """Load keys and users once up front so a bad setup fails with one clear line, before binding."""
    from .keys import KeySet
    from .users import UserStore

    KeySet.load(settings.jwt_keys_dir, settings.jwt_algorithms, settings.jwt_private_key_passphrase)
    UserStore.load(settings.users_file)
    try:
        logs.AuditLog(settings.audit_log_file).close()  # creates it (and its directory)
    except OSError as exc:
        raise ConfigError(f"cannot write the audit log {settings.audit_log_file}: {exc.strerror}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m apigw_gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", help="production.env-style file; the environment overrides it")
    parser.add_argument("--workers", type=int, help="override WORKERS")
    parser.add_argument("--host", help="override HOST")
    parser.add_argument("--port", type=int, help="override PORT")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload request during start-up is not a reason to die
    try:
        if args.env_file:
            load_env_file(args.env_file)
        for name in ("workers", "host", "port"):
            if getattr(args, name) is not None:
                os.environ[name.upper()] = str(getattr(args, name))
        settings = Settings.from_env()
        logs.configure(settings.log_level)
        from .keys import KeySetError
        from .users import UsersError

        try:
            check_config(settings)
        except (KeySetError, UsersError) as exc:
            raise ConfigError(str(exc)) from None
    except (ConfigError, OSError) as exc:
        print(f"apigw-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print("configuration ok")
        return 0
    workers = settings.workers or os.cpu_count() or 1
    made_metrics_dir = _prepare_metrics_dir(workers)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as exc:
        print(f"apigw-gateway: cannot listen on {settings.host}:{settings.port}: {exc.strerror}",
              file=sys.stderr)
        return 2
    try:
        if workers == 1:
            return serve_worker(sock, settings)
        return Supervisor(settings, sock, workers).run()
    finally:
        if made_metrics_dir:
            shutil.rmtree(made_metrics_dir, ignore_errors=True)
