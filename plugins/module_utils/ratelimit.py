# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rate-limit counters: clear (state=absent), impose (state=present), inspect (info).

A request is validated without touching Redis (``RatelimitRequest``); ``plan(target)``
reads Redis only; ``apply(target)`` is the only write.  Check mode runs the same plan.
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
    covering_scan,
    read_values,
    sample,
    ttl_or_none,
)
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import IP_FIELDS, RATELIMIT_PREFIX, canonical_ip
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    printable,
    to_wire,
    translate_errors,
)

ALL = "all"


class Scope:
    def __init__(self, keyspace, name):
        self.name = name
        self.entry = RATELIMIT_PREFIX + name
        fields = keyspace.fields(self.entry)
        if len(fields) != 1:
            raise RedisOpsError("keyspace.%s (%r) must have exactly one field, the subject (it has %d)."
                                % (self.entry, keyspace.template(self.entry), len(fields)))
        self.field = fields[0]

    def accepts(self, subject):
        return self.field not in IP_FIELDS or canonical_ip(subject) is not None

    def value(self, subject):
        """The subject as the key holds it: an IP in the gateway's canonical form."""
        return canonical_ip(subject) if self.field in IP_FIELDS else subject


def resolve_scopes(keyspace, scope):
    known = keyspace.ratelimit_scopes()
    if scope == ALL:
        return [Scope(keyspace, name) for name in known]
    if scope not in known:
        raise RedisOpsError("Unknown scope %r: choose one of %s or all (a scope is a keyspace entry "
                            "named ratelimit_<scope>)." % (scope, ", ".join(known)))
    return [Scope(keyspace, scope)]


class RatelimitRequest:
    """Validated options of gateway_ratelimit / gateway_ratelimit_info (no I/O)."""

    def __init__(self, keyspace, params, info=False):
        key_scan.validate_engine_params(params)
        self.keyspace = keyspace
        self.params = params
        self.info = info
        self.state = params.get("state") or "absent"
        self.scope = params.get("scope") or ALL
        self.scopes = resolve_scopes(keyspace, self.scope)
        subjects = params.get("subject")
        if subjects is not None and not subjects:
            raise RedisOpsError("Empty subject list: give one or more IPs / user ids, or leave subject unset.")
        self.subjects = None
        if subjects is not None:
            self.subjects = [self._check_subject(s) for s in subjects]
        self.max_keys = params.get("max_keys") or None
        if info:
            return
        self.ttl = check_ttl(params.get("ttl"), required_for="state=present" if self.state == "present" else None)
        self.value = params.get("value")
        if self.state == "present":
            if self.scope == ALL:
                raise RedisOpsError("state=present sets counters of one scope: choose it (%s), not all."
                                    % ", ".join(self.keyspace.ratelimit_scopes()))
            if not self.subjects:
                raise RedisOpsError("state=present needs subject (the IP or user id to block).")
            if self.value is None or self.value < 1:
                raise RedisOpsError("state=present needs value, a count of 1 or more (got %s)." % self.value)
        else:
            if self.value is not None or params.get("ttl") is not None:
                raise RedisOpsError("value and ttl only apply to state=present; nothing was changed.")
            if self.scope == ALL and self.subjects is None and not params.get("confirm_all"):
                raise RedisOpsError("Refusing to clear every rate-limit counter: set confirm_all=true to mean it.")

    def _check_subject(self, subject):
        if len(self.scopes) == 1:
            scope = self.scopes[0]
            return check_field(scope.field, subject, "subject")
        # scope=all: a subject applies to every scope whose field accepts it
        subject = check_field("subject", subject, "subject")
        if not any(scope.accepts(subject) for scope in self.scopes):
            raise RedisOpsError("Subject %r fits no scope (%s expect an IP address)."
                                % (subject, ", ".join(s.name for s in self.scopes)))
        return subject

    def exact_keys(self):
        """{key: (scope, subject)} for the given subjects."""
        keys = {}
        for subject in self.subjects:
            for scope in self.scopes:
                if scope.accepts(subject):
                    value = scope.value(subject)
                    keys[self.keyspace.key(scope.entry, **{scope.field: value})] = (scope, value)
        return keys

    def scan(self, target, raw=False):
        """The read-only KeyScan of the counters this request is about (``raw``: keys as bytes)."""
        sample_size = self.params.get("sample_size")
        if self.subjects is not None:
            return key_scan.scan_for_exact_keys(target, list(self.exact_keys()), sample_size=sample_size)
        patterns, accept = covering_scan([s.entry for s in self.scopes], self.keyspace, raw=raw)
        found = key_scan.scan_keys(target, patterns, count=self.params.get("scan_count"), limit=self.max_keys,
                                   sample_size=sample_size, accept=accept, raw=raw)
        if found.truncated:
            raise RedisOpsError("More than %d rate-limit counters match (scope %s); nothing was %s. Raise "
                                "max_keys (0 = no cap) to act on all of them." % (
                                    self.max_keys, self.scope, "read" if self.info else "deleted"))
        return found

    def plan(self, target):
        if self.state == "present":
            return ImposePlan(self, target)
        return ClearPlan(self, target)

    def identify(self, key):
        """(scope, subject) of a counter key."""
        for scope in self.scopes:
            fields = self.keyspace.parse(scope.entry, key)
            if fields is not None:
                return scope.name, fields[scope.field]
        return None, None


class ClearPlan(Plan):
    def __init__(self, request, target):
        self.request = request
        self.found = request.scan(target, raw=True)  # only counted, sampled and deleted: keep the bytes
        self.changed = self.found.matched > 0
        self.deleted = self.found.matched  # what a real run deletes; apply() sets the real figure
        self.elapsed = self.found.elapsed

    def apply(self, target):
        started = time.monotonic()
        self.deleted = key_scan.unlink_keys(target, self.found, batch_size=self.request.params.get("batch_size"))
        self.elapsed += time.monotonic() - started

    def result(self):
        return dict(matched=self.found.matched, deleted=self.deleted, sample=self.found.sample(),
                    scanned=self.found.scanned, elapsed=round(self.elapsed, 3), scope=self.request.scope)

    def diff(self):
        return dict(before=dict(count=self.found.matched, keys=self.found.sample()),
                    after=dict(count=0, keys=[]))


class ImposePlan(Plan):
    """Set counter = value with TTL, unless it already counts at least value and expires."""

    def __init__(self, request, target):
        self.request = request
        started = time.monotonic()
        self.keys = request.exact_keys()
        with translate_errors(target.description):
            pipe = target.client.pipeline(transaction=False)
            for key in self.keys:
                pipe.get(to_wire(key))
                pipe.ttl(to_wire(key))
            replies = pipe.execute(raise_on_error=False)
        self.before = {}
        self.todo = []
        for index, key in enumerate(self.keys):
            value, ttl = replies[2 * index], replies[2 * index + 1]
            value = None if isinstance(value, Exception) else value
            self.before[key] = None if value is None else dict(value=as_int(value), ttl=ttl_or_none(ttl))
            count = as_int(value)
            if count is None or count < request.value or ttl is None or ttl < 0:
                self.todo.append(key)
        self.changed = bool(self.todo)
        self.elapsed = time.monotonic() - started

    def apply(self, target):
        started = time.monotonic()
        with translate_errors(target.description):
            pipe = target.client.pipeline(transaction=False)
            for key in self.todo:
                pipe.set(to_wire(key), self.request.value, ex=self.request.ttl)
            pipe.execute()
        self.elapsed += time.monotonic() - started

    def after(self):
        after = dict(self.before)
        for key in self.todo:
            after[key] = dict(value=self.request.value, ttl=self.request.ttl)
        return after

    def result(self):
        counters = []
        for key, state in sorted(self.after().items()):
            scope, subject = self.keys[key]
            counters.append(dict(key=printable(key), scope=scope.name, subject=subject,
                                 value=state["value"], ttl=state["ttl"]))
        return dict(matched=len(self.keys) - len(self.todo), set=len(self.todo), counters=counters,
                    sample=sample(self.todo, self.request.params.get("sample_size")),
                    elapsed=round(self.elapsed, 3), scope=self.request.scope)

    def diff(self):
        return dict(before=dict((printable(k), v) for k, v in sorted(self.before.items())),
                    after=dict((printable(k), v) for k, v in sorted(self.after().items())))


def ratelimit_info(request, target, top=0, limit=100):
    """Counters with value and TTL, totals per scope, and the top subjects (read-only)."""
    started = time.monotonic()
    found = request.scan(target)
    values = read_values(target, found)
    counters = []
    totals = dict((scope.name, dict(counters=0, hits=0)) for scope in request.scopes)
    by_subject = {}
    for key, (value, ttl) in values.items():
        if value is None and ttl is not None and ttl == -2:
            continue  # expired between SCAN and GET
        scope, subject = request.identify(key)
        if scope is None:
            continue
        count = as_int(value)
        counters.append(dict(key=printable(key), scope=scope, subject=printable(subject), value=count,
                             ttl=ttl_or_none(ttl)))
        totals[scope]["counters"] += 1
        totals[scope]["hits"] += count or 0
        entry = by_subject.setdefault(subject, dict(subject=printable(subject), count=0, scopes={}))
        entry["count"] += count or 0
        entry["scopes"][scope] = count
    counters.sort(key=lambda c: (-(c["value"] or 0), c["key"]))
    ranked = sorted(by_subject.values(), key=lambda e: (-e["count"], e["subject"]))
    return dict(
        counters=counters[:limit] if limit else counters,
        matched=len(counters),
        totals=totals,
        top=ranked[:top] if top else [],
        sample=found.sample(),
        scanned=found.scanned,
        elapsed=round(time.monotonic() - started, 3),
        scope=request.scope,
    )
