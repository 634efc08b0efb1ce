# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Refresh-token revocation: revoke (state=present), un-revoke (state=absent), inspect (info).

A revocation is ``token:blacklist:<jti>`` = "1" with TTL = the token's remaining lifetime
(capped at the refresh lifetime).  A user's live tokens are the hash ``token:user:<user_id>``
(jti -> exp, epoch seconds).  Reads and writes for many tokens go in one pipelined round
trip (redis-py's cluster pipeline splits it per node, so it is cluster-safe).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import (
    JTI_RE,
    Plan,
    as_int,
    check_literal,
    check_ttl,
    ttl_or_none,
)
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    printable,
    to_wire,
    translate_errors,
)

BLACKLIST = "token_blacklist"
USER_TOKENS = "token_user"
DEFAULT_REFRESH_LIFETIME = 604800


def check_jti(jti):
    jti = "" if jti is None else str(jti)
    if not JTI_RE.match(jti):
        raise RedisOpsError("jti %r is not a token id: expected 8-128 characters of A-Z a-z 0-9 . _ ~ -." % jti)
    return jti


class TokenRequest:
    """Validated options of gateway_token / gateway_token_info (no I/O)."""

    def __init__(self, keyspace, params, info=False):
        self.keyspace = keyspace
        self.params = params
        jtis = params.get("jti")
        if jtis is not None and not jtis:
            raise RedisOpsError("Empty jti list: give one or more token ids, or user_id.")
        self.jtis = [check_jti(j) for j in jtis] if jtis else []
        self.jtis = list(dict.fromkeys(self.jtis))
        self.user_id = None
        if params.get("user_id") is not None:
            self.user_id = check_literal("user_id", params.get("user_id"))
        if not self.jtis and self.user_id is None:
            raise RedisOpsError("Give jti (one or a list of token ids) or user_id (all of a user's tokens).")
        self.lifetime = check_ttl(params.get("refresh_lifetime", DEFAULT_REFRESH_LIFETIME), "refresh_lifetime")
        self.state = params.get("state") or "present"
        if not info and self.state == "absent" and not params.get("allow_unrevoke"):
            raise RedisOpsError("Refusing to un-revoke tokens: set allow_unrevoke=true if policy allows "
                                "a revoked refresh token to be used again.")

    def blacklist_key(self, jti):
        return self.keyspace.key(BLACKLIST, jti=jti)

    def tokens(self, target):
        """[(jti, exp or None)] this request is about: the given jtis (exp from the user's hash when known),
        or every token in the user's hash."""
        known = {}
        if self.user_id is not None:
            with translate_errors(target.description):
                known = target.client.hgetall(to_wire(self.keyspace.key(USER_TOKENS, user_id=self.user_id)))
        if self.jtis:
            return [(jti, as_int(known.get(jti))) for jti in self.jtis]
        return sorted((jti, as_int(exp)) for jti, exp in known.items())

    def revocations(self, target, jtis):
        """{jti: ttl or None} for revoked tokens among ``jtis`` (one pipelined round trip)."""
        if not jtis:
            return {}
        with translate_errors(target.description):
            pipe = target.client.pipeline(transaction=False)
            for jti in jtis:
                pipe.ttl(to_wire(self.blacklist_key(jti)))
            ttls = pipe.execute()
        return dict((jti, ttl) for jti, ttl in zip(jtis, ttls) if ttl is not None and ttl != -2)

    def plan(self, target):
        return TokenPlan(self, target)


class TokenPlan(Plan):
    def __init__(self, request, target, now=None):
        self.request = request
        started = time.monotonic()
        now = int(time.time()) if now is None else now
        self.tokens = request.tokens(target)
        self.revoked_before = request.revocations(target, [jti for jti, _exp in self.tokens])
        self.expired = []
        self.todo = {}  # jti -> ttl (revoke) or None (un-revoke)
        for jti, exp in self.tokens:
            if request.state == "absent":
                if jti in self.revoked_before:
                    self.todo[jti] = None
                continue
            if jti in self.revoked_before:
                continue
            if exp is None:
                self.todo[jti] = request.lifetime
            elif exp <= now:
                self.expired.append(jti)  # cannot be used any more: nothing to revoke
            else:
                self.todo[jti] = min(exp - now, request.lifetime)
        self.changed = bool(self.todo)
        self.verified = None if self.changed else True
        self.elapsed = time.monotonic() - started

    def apply(self, target):
        started = time.monotonic()
        jtis = list(self.todo)
        with translate_errors(target.description):
            pipe = target.client.pipeline(transaction=False)
            for jti, ttl in self.todo.items():
                if ttl is None:
                    pipe.delete(to_wire(self.request.blacklist_key(jti)))
                else:
                    pipe.set(to_wire(self.request.blacklist_key(jti)), "1", ex=ttl)
            pipe.execute()
        now_revoked = self.request.revocations(target, jtis)
        if self.request.state == "absent":
            wrong = [j for j in jtis if j in now_revoked]
        else:
            wrong = [j for j in jtis if j not in now_revoked]
        self.verified = not wrong
        self.elapsed += time.monotonic() - started
        if wrong:
            raise RedisOpsError("%d token(s) not %s after the write (first: %s); run again."
                                % (len(wrong), "un-revoked" if self.request.state == "absent" else "revoked",
                                   wrong[0]))

    def _after(self):
        after = set(self.revoked_before)
        if self.request.state == "absent":
            return sorted(after - set(self.todo))
        return sorted(after | set(self.todo))

    def result(self):
        key = "unrevoked" if self.request.state == "absent" else "revoked"
        out = dict(user_id=self.request.user_id, tokens=len(self.tokens), expired=self.expired,
                   verified=self.verified, elapsed=round(self.elapsed, 3))
        out[key] = sorted(printable(j) for j in self.todo)
        out["already_revoked" if self.request.state == "present" else "not_revoked"] = sorted(
            printable(j) for j, _e in self.tokens
            if (j in self.revoked_before) == (self.request.state == "present") and j not in self.todo
            and j not in self.expired)
        return out

    def diff(self):
        return dict(before=dict(revoked=sorted(printable(j) for j in self.revoked_before)),
                    after=dict(revoked=[printable(j) for j in self._after()]))


def token_info(request, target, now=None):
    """A user's tokens (or the given jtis) and whether each is revoked (read-only)."""
    started = time.monotonic()
    now = int(time.time()) if now is None else now
    tokens = request.tokens(target)
    revoked = request.revocations(target, [jti for jti, _exp in tokens])
    items = []
    for jti, exp in tokens:
        items.append(dict(jti=printable(jti), exp=exp, expires_in=None if exp is None else max(0, exp - now),
                          expired=exp is not None and exp <= now, revoked=jti in revoked,
                          revoked_ttl=ttl_or_none(revoked.get(jti))))
    live = [t for t in items if not t["expired"]]
    return dict(user_id=request.user_id, tokens=items, count=len(items),
                live=len(live), live_not_revoked=len([t for t in live if not t["revoked"]]),
                elapsed=round(time.monotonic() - started, 3))
