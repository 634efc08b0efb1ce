# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one scan/delete engine: read-only plan first, then pipelined UNLINK of the planned keys.

``scan_keys`` walks every primary with SCAN MATCH (never KEYS, which blocks Redis) and
returns the matching keys grouped by node; it writes nothing, so check mode runs the
same code.  ``unlink_keys`` then deletes exactly those keys in pipelined batches: whole
batches with one multi-key UNLINK on a standalone server, per hash slot on a cluster node
(so there is never a CROSSSLOT error).  Keys created after the scan are not touched;
keys that expired meanwhile simply do not count as deleted.

Both talk to one pooled connection of the node directly (send a command, read its reply)
rather than through a redis-py method call per command: on a million keys the per-call
overhead of the client library, not Redis, was most of the client's time.  UNLINK batches
are written while Redis still works on the earlier ones (replies are read behind, at most
``MAX_IN_FLIGHT`` outstanding), so building the next batch overlaps the server's work.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    ENCODING_ERRORS,
    RedisOpsError,
    printable,
    to_wire,
    translate_errors,
)

try:
    from redis.crc import key_slot
except ImportError:  # reported by the connection layer before we get here
    key_slot = None

DEFAULT_SCAN_COUNT = 1000
DEFAULT_BATCH_SIZE = 1000
DEFAULT_SAMPLE_SIZE = 20
MAX_IN_FLIGHT = 64  # UNLINK batches written before their replies are read


def scan_engine_argument_spec():
    """Options every key-deleting module offers (see the key_scan doc fragment)."""
    return dict(
        max_keys=dict(type="int", default=100000, no_log=False),
        scan_count=dict(type="int", default=DEFAULT_SCAN_COUNT),
        batch_size=dict(type="int", default=DEFAULT_BATCH_SIZE),
        sample_size=dict(type="int", default=DEFAULT_SAMPLE_SIZE),
    )


def validate_engine_params(params):
    for name in ("scan_count", "batch_size"):
        if params.get(name) is not None and params[name] < 1:
            raise RedisOpsError("%s must be at least 1 (got %d)." % (name, params[name]))
    if params.get("max_keys") is not None and params["max_keys"] < 0:
        raise RedisOpsError("max_keys must be 0 (no limit) or more (got %d)." % params["max_keys"])
    if params.get("sample_size") is not None and params["sample_size"] < 0:
        raise RedisOpsError("sample_size must be 0 or more (got %d)." % params["sample_size"])


class KeyScan:
    """What a scan found: keys per primary node, counts and a bounded sample."""

    def __init__(self, sample_size=DEFAULT_SAMPLE_SIZE):
        self.by_node = []  # list of (node_client, [keys])
        self.scanned = 0  # keys in the scanned databases (SCAN visits each once)
        self.scan_calls = 0
        self.elapsed = 0.0
        self.sample_size = sample_size
        self.truncated = False  # stopped early because the limit was exceeded

    @property
    def matched(self):
        return sum(len(keys) for _node, keys in self.by_node)

    @property
    def keys(self):
        for _node, keys in self.by_node:
            yield from keys

    def sample(self, size=None):
        size = self.sample_size if size is None else size
        out = []
        for key in self.keys:
            if len(out) >= size:
                break
            out.append(printable(key))
        return sorted(out)


def scan_keys(target, patterns, count=DEFAULT_SCAN_COUNT, limit=None, sample_size=DEFAULT_SAMPLE_SIZE,
              accept=None, allow_match_all=False, raw=False):
    """SCAN every primary for keys matching any of ``patterns``; no writes.

    ``limit``: stop once more than ``limit`` keys matched (``truncated`` is then set);
    the caller refuses to act on a truncated scan, so the cap costs no full pass.
    ``accept``: optional predicate on each key; keys it rejects are not matched (lets a caller
    cover several templates with one broader pattern, i.e. one pass instead of one per template).
    ``allow_match_all``: a pattern made only of ``*`` matches every key of the database; it is
    refused unless the caller passes this explicit flag.
    ``raw``: keep the keys as the bytes Redis sent (``accept`` then gets bytes) - no decoding,
    no re-encoding for UNLINK; for callers that only count, sample and delete (a big clear).
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    for pattern in patterns:
        if not pattern:
            raise RedisOpsError("Refusing to scan with an empty pattern.")
        if not pattern.strip("*") and not allow_match_all:
            raise RedisOpsError("Refusing to scan with pattern %r: it matches every key. "
                                "Name a key template instead." % pattern)
    result = KeyScan(sample_size=sample_size)
    started = time.monotonic()
    for node in target.primaries():
        name = target.node_name(node)
        found = []
        seen = set() if len(patterns) > 1 else None
        with translate_errors(name):
            result.scanned += node.dbsize()
            for pattern in patterns:
                for reply in _scan_pass(node, pattern, count, raw):
                    result.scan_calls += 1
                    # filter(): a C-level loop when accept is, e.g., re.match
                    keys = reply if accept is None else list(filter(accept, reply))
                    if seen is None:
                        found.extend(keys)
                    else:
                        for key in keys:
                            if key not in seen:
                                seen.add(key)
                                found.append(key)
                    if limit is not None and result.matched + len(found) > limit:
                        result.truncated = True
                        break
                if result.truncated:
                    break
        if seen is None and found and len(set(found)) != len(found):
            # SCAN may return a key more than once while the table is rehashing (rare: the
            # cheaper set() check keeps the common case free of an ordered de-duplication)
            found = list(dict.fromkeys(found))
        result.by_node.append((node, found))
        if result.truncated:
            break
    result.elapsed = time.monotonic() - started
    return result


def _pooled_connection(node):
    pool = node.connection_pool
    try:
        return pool, pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        return pool, pool.get_connection("SCAN")


def _scan_pass(node, pattern, count, raw):
    """Yield the keys of each SCAN reply of one full pass over ``node`` (bytes when ``raw``)."""
    pool, connection = _pooled_connection(node)
    try:
        cursor = b"0"
        while True:
            connection.send_command("SCAN", cursor, "MATCH", to_wire(pattern), "COUNT", count)
            cursor, keys = connection.read_response(disable_decoding=True)
            yield keys if raw else [key.decode("utf-8", ENCODING_ERRORS) for key in keys]
            if cursor == b"0":
                return
    except Exception:
        connection.disconnect()  # never hand a connection with a reply still unread back to the pool
        raise
    finally:
        pool.release(connection)


def _unlink_command(keys):
    """UNLINK ``keys`` in the wire format (RESP), built in one pass over the keys."""
    keys = [key.encode("utf-8", ENCODING_ERRORS) if isinstance(key, str) else key for key in keys]
    arguments = b"".join([b"$%d\r\n%s\r\n" % (len(key), key) for key in keys])
    return b"*%d\r\n$6\r\nUNLINK\r\n%s" % (len(keys) + 1, arguments)


def _batches(target, keys, batch_size):
    if target.mode != "cluster":
        return [keys[start:start + batch_size] for start in range(0, len(keys), batch_size)]
    groups = {}
    for key in keys:
        groups.setdefault(key_slot(to_wire(key)), []).append(key)
    return [group[start:start + batch_size] for group in groups.values() for start in range(0, len(group), batch_size)]


def unlink_keys(target, scan, batch_size=DEFAULT_BATCH_SIZE):
    """UNLINK exactly the keys of ``scan``; returns how many existed and were removed.

    A connection lost half way raises a RedisOpsError that says how many keys were confirmed
    deleted: the plan is a set of keys, so re-running the task deletes exactly what is left.
    """
    deleted = 0
    for node, keys in scan.by_node:
        if not keys:
            continue
        name = target.node_name(node)
        confirmed = [0]
        try:
            with translate_errors(name):
                _unlink_on_node(target, node, keys, batch_size, confirmed)
        except RedisOpsError as exc:
            done = deleted + confirmed[0]
            if _lost(exc):
                raise RedisOpsError(
                    "Lost the connection to Redis at %s in the middle of the delete (%s): %d of the %d planned "
                    "keys were confirmed deleted (a batch in flight may have removed more), the others are "
                    "untouched. Re-running the task deletes what is left." % (name, _reason(exc), done, scan.matched))
            if done:
                raise RedisOpsError("%s; %d of the %d planned keys were deleted before this error, re-running the "
                                    "task deletes what is left." % (str(exc).rstrip("."), done, scan.matched))
            raise
        deleted += confirmed[0]
    return deleted


def _lost(exc):
    text = str(exc)
    return "was lost in the middle" in text or "Timed out" in text


def _reason(exc):
    """The server's / socket's own words from a translated error message."""
    text = str(exc)
    start, end = text.find("("), text.rfind(")")
    return text[start + 1:end] if 0 <= start < end else text


def _unlink_on_node(target, node, keys, batch_size, confirmed):
    """Pipelined UNLINK of ``keys`` on one node; ``confirmed[0]`` counts the replies read so far."""
    pool, connection = _pooled_connection(node)
    try:
        in_flight = 0
        for batch in _batches(target, keys, batch_size):
            connection.send_packed_command([_unlink_command(batch)], check_health=False)
            in_flight += 1
            if in_flight > MAX_IN_FLIGHT:
                confirmed[0] += int(connection.read_response())
                in_flight -= 1
        while in_flight:
            confirmed[0] += int(connection.read_response())
            in_flight -= 1
    except Exception:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)


def existing_keys(target, keys):
    """The subset of exact ``keys`` that exist now (one pipelined round trip per node)."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return []
    with translate_errors(target.description):
        pipe = target.client.pipeline(transaction=False)
        for key in keys:
            pipe.exists(to_wire(key))
        flags = pipe.execute()
    return [key for key, flag in zip(keys, flags) if int(flag)]


def scan_for_exact_keys(target, keys, sample_size=DEFAULT_SAMPLE_SIZE):
    """A KeyScan for exact keys (no SCAN needed), grouped by the node that owns each key."""
    result = KeyScan(sample_size=sample_size)
    started = time.monotonic()
    present = existing_keys(target, keys)
    if target.mode == "cluster" and present:
        grouped = {}
        with translate_errors(target.description):
            for key in present:
                node = target.client.get_node_from_key(key)
                grouped.setdefault(node.name, (target.client.get_redis_connection(node), []))[1].append(key)
        result.by_node = list(grouped.values())
    elif present:
        result.by_node = [(target.client, present)]
    result.scanned = len(set(keys))
    result.elapsed = time.monotonic() - started
    return result
