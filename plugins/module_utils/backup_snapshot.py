# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking a snapshot of one Redis node: BGSAVE (the file followed while the child writes it) or the
replication protocol (SYNC, what ``redis-cli --rdb`` does) on a raw socket.

The bytes are fed to an ``rdb.StreamVerifier`` as they arrive, so verification overlaps the snapshot.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import socket
import ssl
import time

from ansible_collections.apigw.ops.plugins.module_utils import rdb
from ansible_collections.apigw.ops.plugins.module_utils.backup_catalog import iso
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    HAS_REDIS, MISSING_REDIS_MSG, RedisOpsError, describe_error, translate_errors)

try:
    from redis.connection import parse_url as redis_parse_url
except ImportError:
    redis_parse_url = None  # HAS_REDIS is False: open_raw_connection says so

POLL = 0.05
FOLLOW_CHUNK = 1 << 20


# -- the raw replication connection ------------------------------------------------------------

class RawConnection:
    """One authenticated (optionally TLS) socket to one Redis node, for protocols redis-py
    does not speak (the replication stream of SYNC).  Built from the same module parameters
    as every other connection; errors are one-line RedisOpsError."""

    def __init__(self, sock, description):
        self.sock = sock
        self.description = description
        self._buffer = b""

    @staticmethod
    def encode(*args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    def send(self, *args):
        self.sock.sendall(self.encode(*args))

    def recv(self, size=1 << 20):
        """Buffered bytes first, then the socket; b'' when the peer closed."""
        if self._buffer:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
            return data
        return self.sock.recv(size)

    def readline(self):
        """One line without CRLF (or a lone LF); raises RedisOpsError if the peer closes."""
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RedisOpsError("Redis at %s closed the connection." % self.description)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.rstrip(b"\r")

    def command(self, *args):
        """Send a command, return its simple reply line as text; '-ERR ...' raises RedisOpsError."""
        self.send(*args)
        line = self.readline().decode("utf-8", "replace")
        if line.startswith("-"):
            raise RedisOpsError(describe_error(line[1:], self.description))
        return line

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def open_raw_connection(params, host=None, port=None):
    """A RawConnection to host:port (default: the module's host/port or url), with the module's
    TLS settings and AUTH already done.  Raises RedisOpsError with one line."""
    if not HAS_REDIS:
        raise RedisOpsError(MISSING_REDIS_MSG)
    username, password, tls, unix_path = params.get("redis_username"), params.get("password"), params.get("tls"), None
    if params.get("url") and host is None:
        parsed = redis_parse_url(params["url"])
        host, port, unix_path = parsed.get("host"), parsed.get("port"), parsed.get("path")
        username = parsed.get("username") or username
        password = parsed.get("password") or password
        tls = tls or params["url"].startswith("rediss://")
    host = host or params.get("host") or "localhost"
    port = int(port or params.get("port") or 6379)
    description = "unix:%s" % unix_path if unix_path else "%s:%s" % (host, port)
    timeout = params.get("socket_timeout") or 10.0
    try:
        if unix_path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(unix_path)
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            context = ssl.create_default_context(cafile=params.get("ca_path"))
            if not params.get("validate_certs", True):
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if params.get("client_cert"):
                context.load_cert_chain(params["client_cert"], params.get("client_key"))
            sock = context.wrap_socket(sock, server_hostname=host)
    except (OSError, ValueError) as exc:
        raise RedisOpsError(describe_error(exc, description))
    conn = RawConnection(sock, description)
    try:
        if password:
            conn.command(*(["AUTH", username, password] if username else ["AUTH", password]))
    except OSError as exc:
        conn.close()
        raise RedisOpsError(describe_error(exc, description))
    except RedisOpsError:
        conn.close()
        raise
    return conn


# -- BGSAVE / replication ---------------------------------------------------------------------

def info_section(node, section):
    return node.info(section)


def wait_persistence(node, done, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        info = info_section(node, "persistence")
        if done(info):
            return info
        if time.monotonic() > deadline:
            raise RedisOpsError("Timed out after %ds waiting for %s; raise timeout." % (timeout, what))
        time.sleep(POLL)


def config_get(node, key):
    value = node.config_get(key)
    return value.get(key) if isinstance(value, dict) else None


def _temp_rdb(directory, since):
    """The temporary file a BGSAVE child is writing (temp-<pid>.rdb), newest first, or None."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "temp-[0-9]*.rdb")):
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if mtime >= since - 1:
            found.append((mtime, path))
    return max(found)[1] if found else None


def _drain(handle, verifier):
    read = 0
    while True:
        chunk = handle.read(FOLLOW_CHUNK)
        if not chunk:
            return read
        verifier.feed(chunk)
        read += len(chunk)


def snapshot_bgsave(node, description, timeout, new_verifier, require_local=True):
    """BGSAVE on the node, wait, and read the snapshot from its dir (readable on this host).

    The file the BGSAVE child writes (temp-<pid>.rdb) is followed while it grows and fed to the
    verifier, so verification runs alongside the save; when BGSAVE ends, that file has been renamed
    to dir/dbfilename - checked by inode, else the dump file is read afresh.  Returns the verifier
    (finish() not yet called).
    """
    directory, dbfilename = config_get(node, "dir"), config_get(node, "dbfilename")
    if not directory or not dbfilename:
        raise RedisOpsError("Redis at %s did not report dir/dbfilename (CONFIG GET disabled?): "
                            "use method=replication." % description)
    path = os.path.join(directory, dbfilename)
    if require_local and not os.access(directory, os.R_OK | os.X_OK):
        raise RedisOpsError("method=bgsave needs the Redis data directory %s of %s readable on this "
                            "host: run the task on the Redis host, or use method=replication."
                            % (directory, description))
    server_time = int(node.time()[0])
    while True:
        try:
            node.bgsave()
            break
        except Exception as exc:  # pylint: disable=broad-except
            text = str(exc).lower()
            if "in progress" not in text and "already" not in text:
                raise
            wait_persistence(node, lambda i: not i.get("rdb_bgsave_in_progress")
                             and not i.get("aof_rewrite_in_progress"), timeout, "a running BGSAVE/AOF rewrite")
    started = time.time()
    verifier = new_verifier()
    handle = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            info = info_section(node, "persistence")
            if handle is None:
                temp = _temp_rdb(directory, started)
                if temp:
                    try:
                        handle = open(temp, "rb")  # noqa: SIM115 - followed across polls, closed below
                    except (IOError, OSError):
                        handle = None
            grew = _drain(handle, verifier) if handle else 0
            if not info.get("rdb_bgsave_in_progress"):
                break
            if time.monotonic() > deadline:
                raise RedisOpsError("Timed out after %ds waiting for BGSAVE; raise timeout." % timeout)
            if grew < FOLLOW_CHUNK:  # caught up with the child: wait instead of asking INFO in a tight loop
                time.sleep(POLL)
        if info.get("rdb_last_bgsave_status") != "ok":
            raise RedisOpsError("BGSAVE failed on %s (rdb_last_bgsave_status:%s): check its log - usually its dir "
                                "%s is not writable or the disk is full; no backup was written."
                                % (description, info.get("rdb_last_bgsave_status"), directory))
        followed = False
        if handle is not None:
            _drain(handle, verifier)
            try:
                followed = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
            except OSError:
                followed = False
        if not followed:  # too quick to follow, or renamed over since: read the dump itself
            verifier.abort()
            verifier = new_verifier()
            try:
                with open(path, "rb") as dump:
                    _drain(dump, verifier)
            except (IOError, OSError) as exc:
                raise RedisOpsError("BGSAVE on %s succeeded but %s cannot be read (%s); use method=replication."
                                    % (description, path, exc.strerror or exc))
    except Exception:
        verifier.abort()
        raise
    finally:
        if handle is not None:
            handle.close()
    try:
        ctime = int(rdb.parse_header(verifier.data()[:4096])["aux"].get("ctime", 0))
    except (rdb.RdbError, ValueError):
        ctime = 0
    if ctime and ctime < server_time - 1:
        verifier.abort()
        raise RedisOpsError("%s is not the snapshot %s just wrote (it is from %s): is Redis on another "
                            "host? Use method=replication." % (path, description, iso(ctime)))
    return verifier


def snapshot_replication(params, host, port, description, new_verifier=None):
    """A point-in-time RDB over the replication protocol (what redis-cli --rdb does), fed to a
    verifier as it arrives.  Returns the verifier (finish() not yet called)."""
    verifier = (new_verifier or rdb.StreamVerifier)()
    conn = open_raw_connection(params, host, port)
    received = 0
    try:
        with translate_errors(description):
            for capability in (("capa", "eof"), ("rdb-only", "1")):
                try:
                    conn.command("REPLCONF", *capability)
                except RedisOpsError:
                    pass  # older servers: a plain disk-based transfer still works
            conn.send("SYNC")
            while True:
                line = conn.readline()
                if not line:
                    continue  # keepalive newline while the server prepares the snapshot
                if line.startswith(b"-"):
                    raise RedisOpsError("Redis at %s refused SYNC (%s): the user needs the sync/psync "
                                        "permission (or use method=bgsave)."
                                        % (description, line[1:].decode("utf-8", "replace")))
                if line.startswith(b"$"):
                    break
            if line.startswith(b"$EOF:"):  # diskless: the payload ends with a 40-byte mark
                mark = line[5:]
                pending = b""
                while True:
                    chunk = conn.recv()
                    if not chunk:
                        raise RedisOpsError("Redis at %s closed the connection during the transfer after %d bytes; "
                                            "no backup file was written." % (description, received))
                    received += len(chunk)
                    pending += chunk
                    if len(pending) > len(mark):
                        verifier.feed(pending[:-len(mark)])
                        pending = pending[-len(mark):]
                    if pending == mark:
                        break
            else:
                expected = int(line[1:])
                while received < expected:
                    chunk = conn.recv(min(1 << 20, expected - received))
                    if not chunk:
                        raise RedisOpsError("Redis at %s closed the connection during the transfer after %d of %d "
                                            "bytes; no backup file was written." % (description, received, expected))
                    verifier.feed(chunk)
                    received += len(chunk)
    except Exception:
        verifier.abort()
        raise
    finally:
        conn.close()
    return verifier


def resolve_method(method, node):
    """'bgsave' when the server's dir is readable on this host (for auto), else 'replication'."""
    if method != "auto":
        return method
    try:
        directory = config_get(node, "dir")
    except Exception:  # pylint: disable=broad-except
        return "replication"
    if directory and os.path.isdir(directory) and os.access(directory, os.R_OK | os.X_OK):
        return "bgsave"
    return "replication"
