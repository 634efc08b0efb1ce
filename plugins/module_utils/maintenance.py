# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance mode: the gateway's ``gateway:maintenance`` hash (runbook "Maintenance Windows").

The gateway reads three fields of the hash (``apigw_gateway.store.parse_maintenance``):
``enabled`` (on when one of TRUE_WORDS, case-insensitive), ``retry_after`` (seconds, the
``Retry-After`` header of its 503s) and ``message`` (the 503 body's message, first 500
characters).  No hash means maintenance is off.  The module also writes audit fields the
gateway ignores - ``reason``, ``operator``, ``enabled_at`` and ``expires_at`` - so that
``redis-cli hgetall gateway:maintenance`` tells who turned it on, why, since when and until when.

An expiry (``ttl`` / ``expires``) is an EXPIREAT on the hash: when it passes, Redis deletes the
hash and every gateway replica is out of maintenance at its next poll, with no gateway change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import re
import time

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import Plan
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    printable,
    to_wire,
    translate_errors,
)

ENTRY = "maintenance"
# the gateway's own rules (apigw_gateway/store.py)
TRUE_WORDS = ("1", "true", "yes", "on", "enabled")
DEFAULT_RETRY_AFTER = 300
DEFAULT_MESSAGE = "Service temporarily unavailable for maintenance"
MESSAGE_MAX = 500
# Retry-After is in seconds; more than a day is almost always milliseconds by mistake
RETRY_AFTER_MAX = 86400
TEXT_MAX = 500
MANAGED = ("enabled", "retry_after", "message", "reason", "operator", "enabled_at", "expires_at")
PRESENT_ONLY = ("retry_after", "maintenance_message", "reason", "operator", "ttl", "expires")
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def iso(epoch):
    return time.strftime(ISO_FORMAT, time.gmtime(epoch))


def is_enabled(fields):
    """Whether the gateway sees maintenance on in these hash fields."""
    return str((fields or {}).get("enabled", "")).strip().lower() in TRUE_WORDS


def check_retry_after(value):
    if value is None:
        return DEFAULT_RETRY_AFTER
    if value < 1:
        raise RedisOpsError("retry_after must be 1 or more seconds (got %d); clients retry after this many "
                            "seconds." % value)
    if value > RETRY_AFTER_MAX:
        raise RedisOpsError("retry_after is in seconds and %d s is more than a day; give seconds (for example "
                            "300), not milliseconds." % value)
    return value


def check_text(name, value, limit=TEXT_MAX):
    """An optional one-line text; None stays None, empty or blank is refused."""
    if value is None:
        return None
    value = str(value)
    if not value.strip():
        raise RedisOpsError("Empty %s: give a text, or leave %s out." % (name, name))
    if any(ch in value for ch in "\r\n") or any(ord(ch) < 32 and ch != "\t" for ch in value):
        raise RedisOpsError("The %s has a line break or control character; give one line." % name)
    if len(value) > limit:
        shown = " (the gateway shows only the first %d)" % limit if name == "maintenance_message" else ""
        raise RedisOpsError("The %s is %d characters long; at most %d are allowed%s."
                            % (name, len(value), limit, shown))
    return value


def parse_expires(value, now):
    """Epoch seconds (int) of an ISO 8601 time with a time zone, or of epoch seconds; in the future."""
    text = str(value).strip()
    if re.match(r"^[0-9]+$", text):
        epoch = int(text)
    else:
        iso_text = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            moment = datetime.datetime.fromisoformat(iso_text)
        except ValueError:
            raise RedisOpsError("expires %r is not a time: give ISO 8601 with a time zone (for example "
                                "2026-01-15T04:00:00Z) or epoch seconds." % text)
        if moment.tzinfo is None:
            raise RedisOpsError("expires %r has no time zone: add Z for UTC (for example 2026-01-15T04:00:00Z)."
                                % text)
        epoch = calendar.timegm(moment.utctimetuple())
    if epoch <= now:
        raise RedisOpsError("expires %s (%s) is not in the future; nothing was changed." % (text, iso(epoch)))
    return epoch


class MaintenanceRequest:
    """Validated options of gateway_maintenance (no I/O)."""

    def __init__(self, keyspace, params, now=None):
        self.key = keyspace.key(ENTRY)
        self.state = params.get("state") or "present"
        self.now = int(time.time() if now is None else now)
        if self.state == "absent":
            given = [name for name in PRESENT_ONLY if params.get(name) is not None]
            if given:
                raise RedisOpsError("%s only appl%s to state=present; nothing was changed."
                                    % (", ".join(given), "ies" if len(given) == 1 else "y"))
            return
        self.retry_after = check_retry_after(params.get("retry_after"))
        message = params.get("maintenance_message")
        self.message = DEFAULT_MESSAGE if message is None else check_text("maintenance_message", message, MESSAGE_MAX)
        self.reason = check_text("reason", params.get("reason"))
        self.operator = check_text("operator", params.get("operator"))
        if params.get("ttl") is not None and params.get("expires") is not None:
            raise RedisOpsError("Give ttl or expires, not both; nothing was changed.")
        self.ttl = params.get("ttl")
        if self.ttl is not None and self.ttl < 1:
            raise RedisOpsError("ttl must be a positive number of seconds (got %d)." % self.ttl)
        self.expires = None
        if params.get("expires") is not None:
            if not str(params.get("expires")).strip():
                raise RedisOpsError("Empty expires: give a time (for example 2026-01-15T04:00:00Z), or leave it out.")
            self.expires = parse_expires(params.get("expires"), self.now)

    def plan(self, target):
        return MaintenancePlan(self, target)


def read_state(target, key):
    """(fields, pttl) of the maintenance key; fails on a key that is not a hash."""
    with translate_errors(target.description):
        kind = target.client.type(to_wire(key))
        if kind not in ("none", "hash"):
            shown = printable(key)
            raise RedisOpsError("%s is a %s, not a hash; the gateway cannot read it. Nothing was changed: delete "
                                "it (redis-cli del %s) or fix keyspace.maintenance." % (shown, kind, shown))
        fields = target.client.hgetall(to_wire(key)) if kind == "hash" else {}
        pttl = target.client.pttl(to_wire(key)) if kind == "hash" else -2
    return dict(fields), pttl


def seconds_left(pttl):
    if pttl is None or pttl < 0:
        return None
    return -(-pttl // 1000)


class MaintenancePlan(Plan):
    """The hash as it is, as it should be, and the writes (HDEL/HSET + expiry, or DEL) in between."""

    def __init__(self, request, target):
        started = time.monotonic()
        self.request = request
        self.key = request.key
        self.before, self.pttl_before = read_state(target, self.key)
        self.was_on = is_enabled(self.before)
        self.removed, self.set_fields, self.expiry = [], {}, None  # expiry: None, "persist" or epoch
        self.delete = False
        if request.state == "absent":
            self.delete = self.was_on  # a hash that says "off" is already off: left as it is
            self.after = {} if self.delete else dict(self.before)
        else:
            self._plan_present()
        self.changed = bool(self.delete or self.removed or self.set_fields or self.expiry is not None)
        self.verified = None if self.changed else True
        self.pttl_after = self._predicted_pttl()
        self.elapsed = time.monotonic() - started

    def _plan_present(self):
        request, before, now = self.request, self.before, self.request.now
        desired = dict(enabled=before["enabled"] if self.was_on else "true",
                       retry_after=str(request.retry_after), message=request.message)
        if self.was_on:
            # the same window: keep when it started, and audit fields not given this time
            for name in ("enabled_at", "reason", "operator"):
                if before.get(name) is not None:
                    desired[name] = before[name]
        else:
            desired["enabled_at"] = iso(now)
        for name in ("reason", "operator"):
            if getattr(request, name) is not None:
                desired[name] = getattr(request, name)
        has_expiry = self.pttl_before is not None and self.pttl_before > 0
        if request.expires is not None:
            desired["expires_at"] = iso(request.expires)
            if not (has_expiry and before.get("expires_at") == desired["expires_at"]):
                self.expiry = request.expires
        elif request.ttl is not None:
            if self.was_on and has_expiry:  # not extended, like a lockout's TTL
                if before.get("expires_at") is not None:
                    desired["expires_at"] = before["expires_at"]
            else:
                self.expiry = now + request.ttl
                desired["expires_at"] = iso(self.expiry)
        elif has_expiry:
            self.expiry = "persist"
        self.removed = sorted(name for name in MANAGED if name in before and name not in desired)
        self.set_fields = dict((name, value) for name, value in desired.items() if before.get(name) != value)
        self.after = dict((k, v) for k, v in before.items() if k not in self.removed)
        self.after.update(desired)

    def _predicted_pttl(self):
        if not self.after:
            return -2
        if self.expiry == "persist":
            return -1
        if self.expiry is not None:
            return (self.expiry - self.request.now) * 1000
        return self.pttl_before

    def apply(self, target):
        started = time.monotonic()
        key = to_wire(self.key)
        with translate_errors(target.description):
            pipe = target.client.pipeline(transaction=True)  # one key: MULTI/EXEC on its node
            if self.delete:
                pipe.delete(key)
            if self.removed:
                pipe.hdel(key, *self.removed)
            if self.set_fields:
                pipe.hset(key, mapping=self.set_fields)
            if self.expiry == "persist":
                pipe.persist(key)
            elif self.expiry is not None:
                pipe.expireat(key, self.expiry)
            pipe.execute()
        fields, pttl = read_state(target, self.key)
        self.elapsed += time.monotonic() - started
        self.after, self.pttl_after = fields, pttl
        if self.request.state == "absent":
            self.verified = not is_enabled(fields)
        else:
            self.verified = (is_enabled(fields) and fields.get("retry_after") == str(self.request.retry_after)
                             and fields.get("message") == self.request.message
                             and (pttl > 0 if self.expiry not in (None, "persist") else True))
        if not self.verified:
            raise RedisOpsError("Maintenance %s not verified: %s reads back as %r (TTL %s ms) after the write; "
                                "another client may have changed it. Run again or investigate."
                                % ("on" if self.request.state == "present" else "off", printable(self.key),
                                   dict((printable(k), printable(v)) for k, v in fields.items()), pttl))

    def facts(self, fields, pttl):
        """A maintenance state as the gateway reads it, with the audit fields and the TTL."""
        fields = fields or {}
        on = is_enabled(fields)
        try:
            retry_after = max(0, int(fields.get("retry_after") or DEFAULT_RETRY_AFTER))
        except ValueError:
            retry_after = DEFAULT_RETRY_AFTER
        return dict(
            enabled=on,
            retry_after=retry_after if on else None,
            message=printable(fields.get("message") or DEFAULT_MESSAGE)[:MESSAGE_MAX] if on else None,
            reason=printable(fields["reason"]) if fields.get("reason") is not None else None,
            operator=printable(fields["operator"]) if fields.get("operator") is not None else None,
            enabled_at=fields.get("enabled_at"),
            expires_at=fields.get("expires_at"),
            ttl=seconds_left(pttl),
        )

    def result(self):
        return dict(key=printable(self.key), state=self.request.state,
                    maintenance=self.facts(self.after, self.pttl_after),
                    previous=self.facts(self.before, self.pttl_before),
                    verified=self.verified, elapsed=round(self.elapsed, 3))

    def _shown(self, fields):
        if not fields:
            return None
        return dict((printable(k), printable(v)) for k, v in sorted(fields.items()))

    def diff(self):
        key = printable(self.key)
        return dict(before={key: self._shown(self.before)}, after={key: self._shown(self.after)})
