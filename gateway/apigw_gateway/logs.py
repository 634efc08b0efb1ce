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


def log(level, msg, **fields):
    number = LEVELS[level]
    if number < _State.threshold:
        return
    record = {"level": level, "time": int(time.time() * 1000), "pid": _State.pid, "msg": msg}
    record.update(fields)
    _write(1, record)


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
