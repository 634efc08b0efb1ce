# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's audit log (and JSON request log), read the way the runbook's jq pipelines read it.

``AuditQuery(params, now)`` validates the options without touching a file; ``read_logs(query,
audit_files, request_files)`` streams every file line by line (never the whole file in memory; rotated
``.gz``/``.bz2``/``.xz`` files decompressed on the fly) and returns matching events (the newest
``limit``, newest last), counts per event type, the ``top`` values of ip / username and the lines it
had to skip.  Nothing is ever written.

Two cheap screens run on the raw bytes before a line is parsed, like the runbook's ``grep`` before
``jq``: for each literal filter (event type, username, requestId) the line must contain the value as
a JSON string (``"LOGIN_FAILURE"``) - unless it contains a backslash, in which case the value may be
escaped and the line is parsed anyway.  The screens only ever skip lines that cannot match, so the
result is the same as parsing every line.  A screened-out line is still counted as malformed when it
does not even look like a JSON object (``{`` ... ``}``); a subtler fault in it goes unnoticed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bz2
import collections
import datetime
import glob
import gzip
import ipaddress
import json
import os
import re
import time

try:
    import lzma
except ImportError:  # pragma: no cover - Pythons built without liblzma
    lzma = None

DEFAULT_PATH = "logs/audit-logs.json"
EVENT_TYPES = ("LOGIN_SUCCESS", "LOGIN_FAILURE", "ACCOUNT_LOCKED", "TOKEN_REFRESH", "TOKEN_REVOKED",
               "RATE_LIMIT_EXCEEDED", "LOGOUT")
REQUEST = "REQUEST"      # an "Incoming request" line of the gateway's JSON request log
ERROR = "ERROR"          # a line of level error (or worse) of the request log
TOP_FIELDS = ("ip", "username")
MAX_LINE = 1024 * 1024   # a longer line is skipped as malformed, never held in memory whole
SAMPLE = 5               # malformed lines described in the result
ERROR_LEVELS = frozenset(("error", "fatal", "critical", "crit", "alert", "emerg", "panic"))
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
RELATIVE_RE = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*([smhdw])$", re.IGNORECASE)
ISO_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?)?"
                    r"\s*(Z|[+-]\d\d:?\d\d)?$", re.IGNORECASE)
STATUS_RE = re.compile(r"^([1-5])(\d\d|xx)$", re.IGNORECASE)
ROTATED_RE = re.compile(r"^[.-]\d[\w.-]*$")
UTC = datetime.timezone.utc


class AuditError(Exception):
    """A one-line, user-facing reason the query cannot run."""


# -- time ---------------------------------------------------------------------------------------------
def iso(epoch):
    """Epoch seconds as the gateway writes them: 2026-01-15T10:00:00.123Z."""
    moment = datetime.datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def _iso_to_epoch(text):
    """ISO 8601 (date, date-time, optional fraction and offset; no offset = UTC) as epoch seconds, or None."""
    match = ISO_RE.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                                   int(second or 0), int((fraction or "0")[:6].ljust(6, "0")), tzinfo=UTC)
    except ValueError:
        return None
    epoch = (moment - datetime.datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()
    if offset and offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        epoch -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return epoch


def parse_time(value, now, name):
    """``since``/``until``/``now``: ISO 8601, ``now``, or a duration before ``now`` (15m, 1h, 2d, 1w, 30s)."""
    text = str(value).strip()
    if text.lower() == "now":
        return now
    match = RELATIVE_RE.match(text)
    if match:
        return now - float(match.group(1)) * UNITS[match.group(2).lower()]
    epoch = _iso_to_epoch(text)
    if epoch is None:
        raise AuditError("%s=%r is not a time: give ISO 8601 (2026-01-15T10:00:00Z, 2026-01-15) or a duration "
                         "before now (30s, 15m, 1h, 2d, 1w)." % (name, value))
    return epoch


def record_time(value):
    """The time of an event (ISO string, or epoch seconds / milliseconds) as epoch seconds, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value / 1000.0 if value > 1e11 else float(value)
    if not isinstance(value, str):
        return None
    try:
        text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return _iso_to_epoch(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# -- the query ----------------------------------------------------------------------------------------
def _compile(pattern, name):
    try:
        return re.compile(pattern)
    except (re.error, TypeError) as exc:
        raise AuditError("%s=%r is not a valid regular expression (%s)." % (name, pattern, exc))


def _literals(values, name):
    if values is None:
        return None
    if not values:
        raise AuditError("Empty %s list: give one or more values, or leave %s unset." % (name, name))
    return frozenset(values)


def _screen(values):
    """A bytes regex that finds any of ``values`` as a JSON string in a raw line."""
    encoded = [json.dumps(v, ensure_ascii=False)[1:-1].encode("utf-8") for v in sorted(values)]
    return re.compile(b'"(?:' + b"|".join(re.escape(e) for e in encoded) + b')"').search


def _ip_filter(values):
    addresses, networks = set(), []
    for value in values:
        try:
            if "/" in value:
                networks.append(ipaddress.ip_network(value, strict=False))
            else:
                addresses.add(ipaddress.ip_address(value))
        except ValueError:
            raise AuditError("ip=%r is not an IP address or network (10.0.0.1, 10.0.0.0/24, 2001:db8::/32)."
                             % (value,))
    return frozenset(values), frozenset(addresses), tuple(networks)


def _as_ip(value):
    try:
        address = ipaddress.ip_address(value)
    except (TypeError, ValueError):
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


class AuditQuery:
    """Validated options of gateway_audit (no I/O)."""

    def __init__(self, params, now=None):
        self.now = parse_time(params["now"], time.time(), "now") if params.get("now") else time.time()
        types = params.get("event_type")
        self.event_types = _literals([t.strip().upper() for t in types] if types is not None else None,
                                     "event_type")
        self.usernames = _literals(params.get("username"), "username")
        self.request_ids = _literals(params.get("request_id"), "request_id")
        self.username_re = None
        if params.get("username_regex") is not None:
            self.username_re = _compile(params["username_regex"], "username_regex").search
        self.line_re = None
        if params.get("line_regex") is not None:
            self.line_re = _compile(params["line_regex"], "line_regex").search
        self.ips = None
        if params.get("ip") is not None:
            self.ips = _ip_filter(_literals(params["ip"], "ip"))
        self.statuses = None
        if params.get("status") is not None:
            self.statuses = self._statuses(_literals([str(s).strip() for s in params["status"]], "status"))
        self.since = self.until = None
        if params.get("since") is not None:
            self.since = parse_time(params["since"], self.now, "since")
        if params.get("until") is not None:
            self.until = parse_time(params["until"], self.now, "until")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise AuditError("The time window is empty: since (%s) is after until (%s)."
                             % (iso(self.since), iso(self.until)))
        for name in ("limit", "top"):
            if params.get(name) is not None and params[name] < 0:
                raise AuditError("%s must be 0 or more (got %d)." % (name, params[name]))
        self.limit = params.get("limit", 20)
        self.top = params.get("top", 10)
        self.top_by = tuple(params.get("top_by") or TOP_FIELDS)
        for field in self.top_by:
            if field not in TOP_FIELDS:
                raise AuditError("top_by=%r: choose from %s." % (field, ", ".join(TOP_FIELDS)))
        # request-log events get their type from the line (REQUEST, ERROR), so only requestId screens them
        self.filtered = any(f is not None for f in (self.usernames, self.username_re, self.request_ids, self.ips,
                                                    self.statuses, self.since, self.until))
        self.screens = tuple(_screen(values) for values in (self.event_types, self.usernames, self.request_ids)
                             if values is not None)
        self.request_screens = tuple(_screen(values) for values in (self.request_ids,) if values is not None)

    @staticmethod
    def _statuses(values):
        exact, classes = set(), set()
        for value in values:
            match = STATUS_RE.match(value)
            if not match:
                raise AuditError("status=%r: give an HTTP status (429) or a class (5xx)." % (value,))
            if match.group(2).lower() == "xx":
                classes.add(int(match.group(1)))
            else:
                exact.add(int(value))
        return frozenset(exact), frozenset(classes)

    def window(self):
        if self.since is None and self.until is None:
            return None
        return {"since": None if self.since is None else iso(self.since),
                "until": None if self.until is None else iso(self.until)}

    def matches(self, event):
        """The fields every filter looks at; the event type is checked by the caller."""
        if self.usernames is not None and event.get("username") not in self.usernames:
            return False
        if self.username_re is not None:
            username = event.get("username")
            if not isinstance(username, str) or not self.username_re(username):
                return False
        if self.request_ids is not None and event.get("requestId") not in self.request_ids:
            return False
        if self.ips is not None and not self._ip_matches(event.get("ip")):
            return False
        if self.statuses is not None and not self._status_matches(event.get("status")):
            return False
        if self.since is not None or self.until is not None:
            moment = record_time(event.get("timestamp"))
            if moment is None:
                raise ValueError("no valid timestamp")
            if (self.since is not None and moment < self.since) or (self.until is not None and moment > self.until):
                return False
        return True

    def _ip_matches(self, value):
        literal, addresses, networks = self.ips
        if value in literal:
            return True
        address = _as_ip(value)
        if address is None:
            return False
        return address in addresses or any(address.version == n.version and address in n for n in networks)

    def _status_matches(self, value):
        exact, classes = self.statuses
        try:
            status = int(value)
        except (TypeError, ValueError):
            return False
        return status in exact or status // 100 in classes


# -- files --------------------------------------------------------------------------------------------
def log_files(path, include_rotated=False, what="Audit log", hint=None):
    """``path`` and, with ``include_rotated``, its rotated siblings (path.1, path.2.gz, path-20260101.gz),
    oldest first (by modification time), the live file last.  Fails on a missing or unreadable ``path``."""
    if not os.path.exists(path):
        hint = hint or "Check the path."
        raise AuditError("%s %s does not exist. %s" % (what, path, hint))
    if os.path.isdir(path):
        raise AuditError("%s %s is a directory, not a file." % (what, path))
    if not os.access(path, os.R_OK):
        raise AuditError("%s %s is not readable by this user (uid %d). Run as its owner or with become."
                         % (what, path, os.getuid()))
    files = [path]
    if include_rotated:
        base = os.path.basename(path)
        rotated = []
        for candidate in glob.glob(glob.escape(path) + "[.-]*"):
            if ROTATED_RE.match(os.path.basename(candidate)[len(base):]) and os.path.isfile(candidate):
                try:
                    rotated.append((os.stat(candidate).st_mtime, candidate))
                except OSError:
                    continue
        files = [name for _mtime, name in sorted(rotated)] + files
    return files


def open_log(path):
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    if path.endswith(".xz"):
        if lzma is None:
            raise OSError("this Python has no lzma module for .xz")
        return lzma.open(path, "rb")
    return open(path, "rb")


class Totals:
    """What a read found: matches, counts, top counters, newest events per source, skipped lines."""

    def __init__(self, query):
        self.query = query
        self.lines = 0
        self.matched = 0
        self.malformed = 0
        self.malformed_sample = []
        self.counts = collections.Counter()
        self.tops = dict((field, collections.Counter()) for field in query.top_by) if query.top else {}
        self.files = []
        self.warnings = []
        self.newest = []

    def skip(self, path, number, reason):
        self.malformed += 1
        if len(self.malformed_sample) < SAMPLE:
            self.malformed_sample.append({"file": path, "line": number, "reason": reason})


def _audit_event(record):
    event_type = record.get("eventType")
    if not isinstance(event_type, str):
        raise ValueError("no eventType")
    return event_type, record


def _request_event(record):
    """An 'Incoming request' line as a REQUEST event, an error line as an ERROR event, anything else None."""
    level = record.get("level")
    if record.get("msg") == "Incoming request":
        event_type = REQUEST
    elif (isinstance(level, str) and level.lower() in ERROR_LEVELS) or (
            isinstance(level, int) and not isinstance(level, bool) and level >= 50):
        event_type = ERROR
    else:
        return None, None
    event = dict(record)
    if not isinstance(event.get("timestamp"), str):
        moment = record_time(record.get("timestamp", record.get("time")))
        if moment is not None:
            event["timestamp"] = iso(moment)
    event["eventType"] = event_type
    event.setdefault("username", None)
    return event_type, event


def _read_file(path, totals, to_event, newest, screens):
    query = totals.query
    line_re = query.line_re
    event_types, limit, tops = query.event_types, query.limit, totals.tops
    counts = totals.counts
    matched = 0
    loads = json.loads
    matches = query.matches if query.filtered else None
    try:
        handle = open_log(path)
    except (IOError, OSError) as exc:
        totals.warnings.append("%s: not read (%s)." % (path, getattr(exc, "strerror", None) or exc))
        return
    number = 0
    try:
        with handle:
            readline = handle.readline
            while True:
                raw = readline(MAX_LINE)
                if not raw:
                    break
                number += 1
                if not raw.endswith(b"\n") and len(raw) >= MAX_LINE:
                    while raw and not raw.endswith(b"\n"):   # drop the rest of an over-long line
                        raw = readline(MAX_LINE)
                    totals.skip(path, number, "longer than %d bytes" % MAX_LINE)
                    continue
                if screens and b"\\" not in raw and not (
                        screens[0](raw) if len(screens) == 1 else all(screen(raw) for screen in screens)):
                    if not (raw.startswith(b"{") and raw.rstrip().endswith(b"}")) and not raw.isspace():
                        totals.skip(path, number, "not a JSON object")   # cheap shape check, not a parse
                    continue
                if line_re is not None and not line_re(raw.decode("utf-8", "replace")):
                    continue
                if raw.isspace():
                    continue
                try:
                    record = loads(raw)
                    if not isinstance(record, dict):
                        raise ValueError("not a JSON object")
                    event_type, event = to_event(record)
                    if event is None or (event_types is not None and event_type not in event_types):
                        continue
                    if matches is not None and not matches(event):
                        continue
                except ValueError as exc:   # JSON, UTF-8, no eventType, no timestamp in a window
                    totals.skip(path, number, _reason(exc))
                    continue
                matched += 1
                counts[event_type] += 1
                for field, counter in tops.items():
                    value = event.get(field)
                    if value is not None:
                        counter[value if isinstance(value, str) else json.dumps(value)] += 1
                if limit:
                    newest.append(event)
    except (IOError, OSError, EOFError, ValueError) as exc:  # a truncated .gz, a file removed under us
        totals.warnings.append("%s: stopped reading at line %d (%s); the lines before it are counted."
                               % (path, number + 1, exc))
    totals.lines += number
    totals.matched += matched
    totals.files.append({"path": path, "lines": number, "matched": matched})


def _reason(exc):
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8"
    if isinstance(exc, json.JSONDecodeError):
        return "not JSON (%s)" % exc.msg
    return str(exc)


def read_logs(query, audit_files=(), request_files=()):
    """Stream the files and return the result of the module (``changed`` excepted)."""
    started = time.time()
    totals = Totals(query)
    sources = []
    for files, to_event, screens in ((audit_files, _audit_event, query.screens),
                                     (request_files, _request_event, query.request_screens)):
        if not files:
            continue
        newest = collections.deque(maxlen=query.limit or 1)
        for path in files:
            _read_file(path, totals, to_event, newest, screens)
        sources.append(list(newest) if query.limit else [])
    if len(sources) > 1:   # interleave the sources by time (a stable sort of at most 2 x limit events)
        events = sorted(sources[0] + sources[1], key=lambda e: record_time(e.get("timestamp")) or 0.0)
    else:
        events = sources[0] if sources else []
    events = events[-query.limit:] if query.limit else []
    top = {}
    for field, counter in totals.tops.items():
        ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:query.top]
        top[field] = [{"value": value, "count": count} for value, count in ranked]
    return {
        "matched": totals.matched,
        "counts": dict(sorted(totals.counts.items())),
        "top": top,
        "distinct": dict((field, len(counter)) for field, counter in totals.tops.items()),
        "events": events,
        "lines": totals.lines,
        "malformed": totals.malformed,
        "malformed_sample": totals.malformed_sample,
        "files": totals.files,
        "window": query.window(),
        "warnings": totals.warnings,
        "elapsed": round(time.time() - started, 3),
    }
