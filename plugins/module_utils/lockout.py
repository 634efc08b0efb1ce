# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Login lockouts: unlock (state=absent, verified), lock (state=present), inspect (info).

The user name is always a literal: it is glob-escaped in SCAN patterns and every key found
is parsed back and compared with it, so unlocking ``al*ce`` never touches ``alice``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.apigw.ops.plugins.module_utils import key_scan
from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import (
    Plan,
    as_int,
    check_field,
    check_ttl,
    check_username,
    read_values,
    sample,
    ttl_or_none,
)
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    printable,
    to_wire,
    translate_errors,
)

LOCKOUT = "lockout"
LOGINFAIL = "loginfail"


class LockoutRequest:
    """Validated options of gateway_lockout / gateway_lockout_info (no I/O)."""

    def __init__(self, keyspace, params, info=False):
        key_scan.validate_engine_params(params)
        self.keyspace = keyspace
        self.params = params
        self.username_pattern = params.get("username_pattern") if info else None
        if self.username_pattern is not None:
            if not self.username_pattern.strip():
                raise RedisOpsError("Empty username_pattern: use * to list every user's lockouts.")
            self.username = None
        elif info and params.get("username") is None:
            self.username = None
        else:
            self.username = check_username(params.get("username"))
        self.ip = None
        if params.get("ip") is not None:
            self.ip = check_field("ip", params.get("ip"), "ip")
        self.max_keys = params.get("max_keys") or None
        self.entries = [LOCKOUT] + ([LOGINFAIL] if info or params.get("clear_failures", True) else [])
        if info:
            return
        self.state = params.get("state") or "absent"
        if self.state == "present":
            self.ttl = check_ttl(params.get("ttl"), required_for="state=present")
            if self.ip is None and "ip" in keyspace.fields(LOCKOUT):
                raise RedisOpsError("state=present needs ip: the gateway locks a user per client IP (%s)."
                                    % keyspace.template(LOCKOUT))
        elif params.get("ttl") is not None:
            raise RedisOpsError("ttl only applies to state=present; nothing was changed.")

    def _values(self, entry):
        values = {}
        if "username" in self.keyspace.fields(entry) and self.username is not None:
            values["username"] = self.username
        if "ip" in self.keyspace.fields(entry) and self.ip is not None:
            values["ip"] = self.ip
        return values

    def _is_exact(self, entry):
        fields = self.keyspace.fields(entry)
        return all(self._values(entry).get(f) not in (None, "") for f in fields)

    def _accept(self, key):
        """Keep a scanned key only if it parses under one entry with exactly our literals."""
        for entry in self.entries:
            fields = self.keyspace.parse(entry, key)
            if fields is None:
                continue
            if all(fields.get(name) == value for name, value in self._values(entry).items()):
                return True
        return False

    def find(self, target, entries=None):
        """KeyScan of the lockout (and failure-counter) keys of this request; read-only."""
        entries = entries or self.entries
        sample_size = self.params.get("sample_size")
        if all(self._is_exact(e) for e in entries):
            keys = [self.keyspace.key(e, **self._values(e)) for e in entries]
            return key_scan.scan_for_exact_keys(target, keys, sample_size=sample_size)
        patterns = []
        for entry in entries:
            if self.username_pattern is not None and "username" in self.keyspace.fields(entry):
                pattern = self._glob_pattern(entry)
            else:
                pattern = self.keyspace.pattern(entry, **self._values(entry))
            patterns.append(pattern)
        accept = None if self.username_pattern is not None else self._accept
        found = key_scan.scan_keys(target, patterns, count=self.params.get("scan_count"), limit=self.max_keys,
                                   sample_size=sample_size, accept=accept)
        if found.truncated:
            raise RedisOpsError("More than %d lockout/failure keys match; nothing was changed. Raise max_keys "
                                "(0 = no cap)." % self.max_keys)
        return found

    def _glob_pattern(self, entry):
        """A pattern whose username part is the caller's glob (info only); other fields escaped."""
        marker = "\x00USER\x00"
        pattern = self.keyspace.pattern(entry, username=marker, **({"ip": self.ip} if self.ip else {}))
        return pattern.replace(marker, self.username_pattern)

    def plan(self, target):
        if self.state == "present":
            return LockPlan(self, target)
        return UnlockPlan(self, target)

    def kind(self, key):
        for entry in (LOCKOUT, LOGINFAIL):
            fields = self.keyspace.parse(entry, key)
            if fields is not None:
                return entry, fields
        return None, {}


class UnlockPlan(Plan):
    """Delete the user's lockouts (and failure counters), then prove none remains."""

    def __init__(self, request, target):
        self.request = request
        self.found = request.find(target)
        self.lockouts = []
        self.failures = []
        for key in self.found.keys:
            entry, _fields = request.kind(key)
            (self.lockouts if entry == LOCKOUT else self.failures).append(key)
        self.changed = self.found.matched > 0
        self.deleted = self.found.matched
        self.remaining = 0
        # nothing to do: the plan itself is the verification; with changes, apply() verifies
        self.verified = None if self.changed else True
        self.elapsed = self.found.elapsed

    def apply(self, target):
        started = time.monotonic()
        self.deleted = key_scan.unlink_keys(target, self.found, batch_size=self.request.params.get("batch_size"))
        after = self.request.find(target, entries=[LOCKOUT])
        self.remaining = after.matched
        self.verified = after.matched == 0
        self.elapsed += time.monotonic() - started
        if not self.verified:
            raise RedisOpsError("Unlock of %r not verified: %d lockout key(s) still exist after the delete (%s); "
                                "the gateway may have locked the account again. Run again or investigate."
                                % (self.request.username, after.matched, ", ".join(after.sample(3))))

    def result(self):
        size = self.request.params.get("sample_size")
        return dict(username=self.request.username, ip=self.request.ip, matched=self.found.matched,
                    deleted=self.deleted, lockouts=sample(self.lockouts, size), failures=sample(self.failures, size),
                    sample=self.found.sample(),
                    remaining=self.remaining, verified=self.verified, elapsed=round(self.elapsed, 3))

    def diff(self):
        size = self.request.params.get("sample_size")
        return dict(before=dict(lockouts=sample(self.lockouts, size), failures=sample(self.failures, size)),
                    after=dict(lockouts=[], failures=[]))


class LockPlan(Plan):
    """Set the lockout flag with a TTL, unless it is already set and expires."""

    def __init__(self, request, target):
        self.request = request
        started = time.monotonic()
        self.key = request.keyspace.key(LOCKOUT, **request._values(LOCKOUT))
        with translate_errors(target.description):
            self.ttl_before = target.client.ttl(to_wire(self.key))
        self.changed = self.ttl_before is None or self.ttl_before < 0  # -2 missing, -1 no expiry
        self.verified = None if self.changed else True
        self.elapsed = time.monotonic() - started

    def apply(self, target):
        started = time.monotonic()
        with translate_errors(target.description):
            target.client.set(to_wire(self.key), "1", ex=self.request.ttl)
            self.verified = bool(target.client.exists(to_wire(self.key)))
        self.elapsed += time.monotonic() - started
        if not self.verified:
            raise RedisOpsError("Lock of %r not verified: %s does not exist after SET."
                                % (self.request.username, printable(self.key)))

    def _state(self, ttl):
        if ttl is None or ttl == -2:
            return None
        return dict(ttl=ttl_or_none(ttl))

    def result(self):
        ttl = self.request.ttl if self.changed else ttl_or_none(self.ttl_before)
        return dict(username=self.request.username, ip=self.request.ip, key=printable(self.key), ttl=ttl,
                    sample=[printable(self.key)] if self.changed else [],
                    verified=self.verified, elapsed=round(self.elapsed, 3))

    def diff(self):
        after = dict(ttl=self.request.ttl) if self.changed else self._state(self.ttl_before)
        return dict(before={printable(self.key): self._state(self.ttl_before)}, after={printable(self.key): after})


def lockout_info(request, target):
    """Lockouts and failure counters with TTLs (read-only)."""
    started = time.monotonic()
    found = request.find(target)
    values = read_values(target, found)
    lockouts, failures = [], []
    for key, (value, ttl) in sorted(values.items()):
        if ttl == -2:
            continue  # expired between SCAN and read
        entry, fields = request.kind(key)
        item = dict(key=printable(key), username=printable(fields.get("username", "")),
                    ip=printable(fields.get("ip", "")), ttl=ttl_or_none(ttl))
        if entry == LOCKOUT:
            lockouts.append(item)
        elif entry == LOGINFAIL:
            item["count"] = as_int(value)
            failures.append(item)
    return dict(lockouts=lockouts, failures=failures, locked=bool(lockouts), sample=found.sample(),
                scanned=found.scanned,
                elapsed=round(time.monotonic() - started, 3))
