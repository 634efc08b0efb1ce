"""Which event loop / HTTP parser the gateway serves with, and TCP_NODELAY on every accepted connection.

Without TCP_NODELAY a keep-alive client waits ~40 ms (its delayed ACK) for every response, because
uvicorn sends a response's head and body in two writes: the ~44 ms floor of the h11/asyncio path.
The checks read the option itself, on the connection the gateway accepted, instead of timing anything.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import subprocess
import sys

import pytest
import uvloop
from apigw_gateway import server
from prometheus_client.parser import text_string_to_metric_families

from .conftest import Gateway, child_env, http_get, wait_for, wait_http

GENEROUS = {"RATE_LIMIT_GLOBAL_MAX": 100000, "RATE_LIMIT_USER_MAX": 100000, "RATE_LIMIT_AUTH_MAX": 100000}
# The gateway as it runs where the `fast` extra is absent: uvloop and httptools cannot be imported.
WITHOUT_FAST_EXTRA = ("import sys; sys.modules['uvloop'] = sys.modules['httptools'] = None; "
                      "from apigw_gateway.server import main; raise SystemExit(main())")
SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture (5.6+)


def nodelay(sock):
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_connections_accepted_on_the_gateway_socket_have_tcp_nodelay():
    listener = server.bind("127.0.0.1", 0)
    try:
        with socket.create_connection(listener.getsockname()):
            accepted, _peer = listener.accept()
            with accepted:
                # asyncio's transports set TCP_NODELAY only where proto is IPPROTO_TCP; accept() copies it
                assert accepted.proto == socket.IPPROTO_TCP
                assert nodelay(accepted)  # the kernel copies the listener's option
    finally:
        listener.close()


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_every_event_loop_serves_with_tcp_nodelay(loop_name):
    """The transports uvicorn gets from loop.create_server(sock=...) on the gateway's socket."""

    async def accepted_nodelay():
        seen = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                seen.set_result(nodelay(transport.get_extra_info("socket")))
                transport.close()

        listener = server.bind("127.0.0.1", 0)
        srv = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        async with srv:
            _reader, writer = await asyncio.open_connection(*listener.getsockname())
            result = await asyncio.wait_for(seen, 10)
            writer.close()
            return result

    new_loop = uvloop.new_event_loop() if loop_name == "uvloop" else asyncio.new_event_loop()
    try:
        assert new_loop.run_until_complete(accepted_nodelay()) is True
    finally:
        new_loop.close()


class GatewayWithoutFastExtra(Gateway):
    def start(self):
        with open(self.stdout, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-c", WITHOUT_FAST_EXTRA], stdout=out,
                                         stderr=subprocess.STDOUT, env=child_env(self.env), cwd=self.dir)
        wait_http(self.url + "/healthz", proc=self.proc, log=self.stdout)
        return self


@pytest.fixture(params=["fast", "fallback"])
def running(request, workdir, redis_server, upstream):
    kind = Gateway if request.param == "fast" else GatewayWithoutFastExtra
    gateway = kind(workdir, redis_server, upstream.url, GENEROUS, workers=2).start()
    yield request.param, gateway
    gateway.stop()


def read_response(client):
    """One whole HTTP/1.1 response with a Content-Length (head and body may arrive in two segments)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _sep, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = client.recv(65536)
        assert chunk, f"connection closed after {data + body!r}"
        body += chunk
    return head


def worker_pids(gateway):
    with open(f"/proc/{gateway.proc.pid}/task/{gateway.proc.pid}/children") as handle:
        return [int(pid) for pid in handle.read().split()]


def server_side_socket(pids, client):
    """A duplicate of the socket a gateway worker accepted for `client` (pidfd_getfd), or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in pids:
        pidfd = os.pidfd_open(pid)
        try:
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                        continue
                except OSError:
                    continue  # closed meanwhile
                fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
                assert fd >= 0, f"pidfd_getfd: {os.strerror(ctypes.get_errno())}"
                sock = socket.socket(fileno=fd)
                try:
                    if sock.type == socket.SOCK_STREAM and sock.getpeername() == client.getsockname():
                        return sock
                except OSError:
                    pass  # a listening or unconnected socket
                sock.close()
        finally:
            os.close(pidfd)
    return None


def test_gateway_reports_its_loop_and_parser_and_sets_tcp_nodelay(running):
    kind, gw = running
    expected = {"fast": ("uvloop", "httptools"), "fallback": ("asyncio", "h11")}[kind]
    wait_for(lambda: len({r["pid"] for r in gw.log_records() if r["msg"] == "Serving"}) == 2, message="2 workers")
    served = {(r["loop"], r["http"]) for r in gw.log_records() if r["msg"] == "Serving"}
    assert served == {expected}
    info = [(s.labels["loop"], s.labels["http"], s.value)
            for family in text_string_to_metric_families(http_get(gw.url + "/metrics").text)
            for s in family.samples if s.name == "gateway_server_info"]
    assert info == [(*expected, 1.0)]

    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as client:
        for _attempt in range(3):  # keep-alive: one connection, several requests
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert read_response(client).startswith(b"HTTP/1.1 200 ")
        accepted = server_side_socket(worker_pids(gw), client)
        assert accepted is not None, "no gateway worker holds the connection"
        with accepted:
            assert nodelay(accepted), f"TCP_NODELAY is off on a connection the {kind} path accepted"
