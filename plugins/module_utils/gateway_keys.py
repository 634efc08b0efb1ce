# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small pieces shared by the rate-limit, lockout and token plans: input checks that fail
with one line before Redis is touched, a base class for plans, and pipelined reads of
values and TTLs of scanned keys."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.apigw.ops.plugins.module_utils.keyspace import (
    IP_FIELDS,
    KEY_SEPARATOR,
    KeyspaceError,
    canonical_ip,
    glob_escape,
)
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    printable,
    to_wire,
    translate_errors,
)

# errors a module turns into fail_json(msg=str(exc))
ERRORS = (RedisOpsError, KeyspaceError)
READ_BATCH = 1000
JTI_RE = re.compile(r"^[A-Za-z0-9._~-]{8,128}$")


def check_literal(what, value):
    """A user-given value used in a key: non-empty, no surrounding blanks or line breaks."""
    if value is None or not str(value).strip():
        raise RedisOpsError("Empty %s: give a non-empty value (an empty one would match every key)." % what)
    value = str(value)
    if value != value.strip() or "\n" in value or "\r" in value:
        raise RedisOpsError("%s %r has surrounding blanks or a line break; give the exact value."
                            % (what.capitalize(), value))
    return value


def is_ip(value):
    return canonical_ip(value) is not None


def check_field(field, value, what):
    """Check a value for a key field; a field named ``ip`` must hold an IP address and is
    returned in the gateway's canonical form (``2001:DB8:0::1`` -> ``2001:db8::1``)."""
    value = check_literal(what, value)
    if field in IP_FIELDS:
        canonical = canonical_ip(value)
        if canonical is None:
            label = "IP" if what == "ip" else what.capitalize()
            raise RedisOpsError("%s %r is not an IP address, but the key's field %s must be one "
                                "(for example 192.0.2.10 or 2001:db8::1)." % (label, value, field))
        return canonical
    return value


def check_username(value):
    """A gateway user name: a literal without the key separator (the reference gateway refuses
    ':' in user names too, so ``lockout:al:ice:...`` can only mean user al)."""
    value = check_literal("username", value)
    if KEY_SEPARATOR in value:
        raise RedisOpsError("Username %r contains %r, the key separator: the gateway refuses such names (use "
                            "1-64 letters, digits or . _ @ + -), so no key can be theirs; nothing was changed."
                            % (value, KEY_SEPARATOR))
    return value


def check_ttl(ttl, name="ttl", required_for=None):
    if ttl is None:
        if required_for:
            raise RedisOpsError("%s needs %s (seconds, 1 or more)." % (required_for, name))
        return None
    if ttl < 1:
        raise RedisOpsError("%s must be a positive number of seconds (got %d)." % (name, ttl))
    return ttl


def covering_scan(templates_by_entry, keyspace, raw=False):
    """SCAN pattern(s) and an accept predicate that find the keys of several whole templates.

    With one template, its own pattern.  With several that share a literal prefix
    (``ratelimit:global:{ip}``, ``ratelimit:user:{user_id}`` ...), one pass over the keyspace with
    ``<prefix>*`` and a predicate that keeps only keys of the given templates (on bytes keys
    when ``raw``, see key_scan.scan_keys).
    """
    entries = list(templates_by_entry)
    patterns = [keyspace.pattern(entry) for entry in entries]
    if len(entries) == 1:
        return patterns, None
    heads = []
    simple = True
    for entry in entries:
        template = keyspace.template(entry)
        head = template.split("{", 1)[0]
        heads.append(head)
        fields = keyspace.fields(entry)
        if len(fields) != 1 or not template.endswith("{%s}" % fields[0]):
            simple = False
    common = heads[0]
    for head in heads[1:]:
        while not head.startswith(common):
            common = common[:-1]
    if not common:
        return patterns, None
    if simple:  # each template is <literal head>{field}: a key is one of ours if it starts with a head
        regex = "(?:%s)." % "|".join(re.escape(head) for head in heads)
        if raw:
            return [glob_escape(common) + "*"], re.compile(to_wire(regex), re.DOTALL).match
        return [glob_escape(common) + "*"], re.compile(regex, re.DOTALL).match
    parsers = [keyspace.parser(entry) for entry in entries]
    if raw:
        return [glob_escape(common) + "*"], lambda key: any(p.match(printable(key)) for p in parsers)
    return [glob_escape(common) + "*"], lambda key: any(p.match(key) for p in parsers)


def read_values(target, scan, with_value=True):
    """{key: (value, ttl)} for the keys of a KeyScan, pipelined on the node that holds them."""
    out = {}
    for node, keys in scan.by_node:
        with translate_errors(target.node_name(node)):
            for start in range(0, len(keys), READ_BATCH):
                chunk = keys[start:start + READ_BATCH]
                pipe = node.pipeline(transaction=False)
                for key in chunk:
                    if with_value:
                        pipe.get(to_wire(key))
                    pipe.ttl(to_wire(key))
                replies = pipe.execute(raise_on_error=False)
                step = 2 if with_value else 1
                for index, key in enumerate(chunk):
                    value = replies[index * step] if with_value else None
                    ttl = replies[index * step + step - 1]
                    if isinstance(value, Exception):  # not a string (WRONGTYPE)
                        value = None
                    if isinstance(ttl, Exception):
                        ttl = None
                    out[key] = (value, ttl)
    return out


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def ttl_or_none(ttl):
    """TTL in seconds for output: None when the key has no expiry (-1) or is gone (-2)."""
    if ttl is None or ttl < 0:
        return None
    return ttl


class Plan:
    """What a module will change: computed read-only, applied by apply(), described by result()/diff()."""

    changed = False

    def apply(self, target):  # pragma: no cover - every plan overrides it
        raise NotImplementedError

    def result(self):
        return {}

    def diff(self):
        return {"before": {}, "after": {}}


def sample(keys, size):
    return sorted(printable(key) for key in keys)[:size] if size else []
