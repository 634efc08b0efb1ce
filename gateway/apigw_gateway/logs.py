"""JSON-lines logging: the process log on stdout and the audit log file.

Each line is written with one os.write() so lines from several workers never interleave
(writes under PIPE_BUF are atomic on pipes; O_APPEND makes file appends atomic).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime

import orjson

LEVELS = {"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40}
AUDIT_EVENTS = ("LOGIN_SUCCESS", "LOGIN_FAILURE", "ACCOUNT_LOCKED", "TOKEN_REFRESH", "TOKEN_REVOKED",
                "RATE_LIMIT_EXCEEDED", "LOGOUT")


class _State:
    threshold = 20
    pid = os.getpid()


def configure(level="info"):
    _State.threshold = LEVELS.get(str(level).lower(), 20)
    _State.pid = os.getpid()  # after a fork, the worker's own pid
    handler = _JSONHandler()
    for name in ("uvicorn", "uvicorn.error", "apigw"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(_State.threshold)
        logger.propagate = False
    logging.getLogger("uvicorn.access").disabled = True


def iso_now(now=None):
    now = time.time() if now is None else now
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(now % 1 * 1000):03d}Z"


# Access-log lines are batched: one write per batch instead of one per request.  Under supervisord each
# write to the workers' shared stdout pipe also costs a wake-up of supervisord, which copies it to the log
# file (~45 us of CPU per request, as much as a /healthz answer itself).  A batch stays below PIPE_BUF (4096),
# so batches from several workers never interleave on that pipe.  It is written when the next line would
# not fit, before any other log line (order is kept), and by flush() from the server's 0.1 s tick.
_ACCESS_BATCH_BYTES = 3584
_access_batch = bytearray()


def log(level, msg, **fields):
    number = LEVELS[level]
    if number < _State.threshold:
        return
    record = {"level": level, "time": int(time.time() * 1000), "pid": _State.pid, "msg": msg}
    record.update(fields)
    flush()
    _write(1, record)


def access(**fields):
    """One "Incoming request" line (info level), batched; at most ~0.1 s late, never out of order."""
    if LEVELS["info"] < _State.threshold:
        return
    record = {"level": "info", "time": int(time.time() * 1000), "pid": _State.pid, "msg": "Incoming request"}
    record.update(fields)
    data = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    if len(_access_batch) + len(data) > _ACCESS_BATCH_BYTES:
        flush()
    _access_batch.extend(data)


def flush():
    """Write the pending access-log lines (the server tick, before other lines, at exit)."""
    if _access_batch:
        data = bytes(_access_batch)
        _access_batch.clear()
        try:
            os.write(1, data)
        except OSError:
            pass


def _write(fd, record):
    data = orjson.dumps(record, default=str, option=orjson.OPT_APPEND_NEWLINE)
    try:
        os.write(fd, data)
    except OSError:
        pass  # a closed stdout must not take requests down


class _JSONHandler(logging.Handler):
    def emit(self, record):
        fields = {"logger": record.name}
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        level = record.levelname.lower()
        log(level if level in LEVELS else "error", record.getMessage(), **fields)


class AuditLog:
    """Append-only JSON lines: timestamp, eventType, username, ip, requestId (+ details)."""

    def __init__(self, path):
        self.path = path
        self._fd = None
        self._lock = threading.Lock()
        self.reopen()

    def reopen(self):
        """Open (again) after log rotation; called on SIGHUP."""
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        with self._lock:
            old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)

    def event(self, event_type, *, username, ip, request_id, **details):
        record = {"timestamp": iso_now(), "eventType": event_type, "username": username, "ip": ip,
                  "requestId": request_id}
        record.update(details)
        _write(self._fd, record)

    def close(self):
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
