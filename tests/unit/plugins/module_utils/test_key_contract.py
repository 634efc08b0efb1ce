# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Property test of the key contract: every operation touches exactly the intended keys, nothing else.

A seeded generator (reproducible: APIGW_PROPERTY_SEED, APIGW_PROPERTY_CASES) draws user names, IPs, user
ids and jtis from a wide alphabet - glob characters * ? [ ] \\, the separator ':', unicode, IPv6 written
every way (upper case, uncompressed, half compressed, IPv4-mapped) - and fills a real redis-server with
the keys the gateway would write, plus decoys a gateway that let ':' into user names would write.  Each case
runs one operation (unlock, clear a rate limit, revoke / un-revoke tokens) as check mode (the plan only:
nothing may change) and then for real, and compares the key sets before and after with an oracle that
knows how each key was made - not with the parser under test.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import ipaddress
import os
import random

import pytest

from ansible_collections.apigw.ops.plugins.module_utils.key_scan import scan_engine_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import Keyspace
from ansible_collections.apigw.ops.plugins.module_utils.lockout import LockoutRequest
from ansible_collections.apigw.ops.plugins.module_utils.ratelimit import RatelimitRequest
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError, open_target
from ansible_collections.apigw.ops.plugins.module_utils.tokens import TokenRequest
from ansible_collections.apigw.ops.tests.unit.plugins.module_utils.connection_params import params

SEED = int(os.environ.get("APIGW_PROPERTY_SEED", "20261201"))
CASES = int(os.environ.get("APIGW_PROPERTY_CASES", "600"))
ALPHABET = list("abcdeAZ09._@+-*?[]\\:%{}^! ") + [
    u"\u00e9", u"\u00df", u"\u4e2d", u"\u03a9", u"\U0001F642", u"\u0301"]
JTI_ALPHABET = "abcXYZ0189._~-"
IPV4 = ["10.0.0.1", "10.0.0.2", "192.0.2.10", "127.0.0.1"]
IPV6 = ["2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", "fe80::1", "::1", "2001:db8:abcd:12::ff"]
HOURS = 3600


def text(rng, low=1, high=8):
    value = "".join(rng.choice(ALPHABET) for _index in range(rng.randint(low, high)))
    return value.strip() or "x"


def name_without_separator(rng):
    return text(rng).replace(":", "") or "y"


def ip_forms(rng, canonical):
    """The ways an operator may write an address; all mean ``canonical``."""
    address = ipaddress.ip_address(canonical)
    forms = [canonical]
    if address.version == 4:
        mapped = ipaddress.IPv6Address("::ffff:" + canonical)
        forms += ["::ffff:" + canonical, "::FFFF:" + canonical, mapped.exploded, str(mapped).upper()]
    else:
        forms += [canonical.upper(), address.exploded, address.exploded.upper()]
        groups = address.exploded.split(":")
        # drop the leading zeros of each group, keep every group: 2001:DB8:0:0:0:0:0:1
        forms.append(":".join(g.lstrip("0") or "0" for g in groups).upper())
    return rng.choice(forms)


def canonical(ip):
    address = ipaddress.ip_address(ip)
    if address.version == 6 and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


class World:
    """The populated keyspace and how each key was made (the oracle's knowledge)."""

    def __init__(self, rng):
        self.rng = rng
        self.users = [name_without_separator(rng) for _index in range(6)]
        # names that share a prefix with, or glob-match, another user's name
        self.users += [self.users[0] + rng.choice("*?.x"), self.users[0][:1], "*", "?", "[" + self.users[1][:1] + "]"]
        self.users = list(dict.fromkeys(self.users))
        self.ips = IPV4 + IPV6
        self.user_ids = [text(rng) for _index in range(5)] + ["user-1", "user-1:x", "user-*"]
        self.jtis = ["".join(rng.choice(JTI_ALPHABET) for _index in range(rng.randint(8, 20))) for _index in range(8)]
        self.keys = {}  # key -> (kind, fields)
        for user in self.users:
            for ip in rng.sample(self.ips, 3):
                self.keys["lockout:%s:%s" % (user, ip)] = ("lockout", dict(username=user, ip=ip))
                self.keys["loginfail:%s:%s" % (user, ip)] = ("loginfail", dict(username=user, ip=ip))
            # a decoy a gateway that allows ':' in names would write: user "<name>:z<rest>" - never an IP after
            # the first ':', so under the contract it belongs to nobody
            decoy = "%s:z%s:%s" % (user, name_without_separator(rng), rng.choice(self.ips))
            self.keys["lockout:" + decoy] = ("decoy", {})
        for ip in self.ips:
            for scope in ("global", "auth"):
                self.keys["ratelimit:%s:%s" % (scope, ip)] = ("ratelimit_" + scope, dict(ip=ip))
        for user_id in self.user_ids + self.ips[:2]:
            self.keys["ratelimit:user:%s" % user_id] = ("ratelimit_user", dict(user_id=user_id))
        self.user_tokens = {}
        for index, user_id in enumerate(self.user_ids):
            jtis = self.jtis[index % 4::4][:2]
            self.user_tokens[user_id] = jtis
            self.keys["token:user:%s" % user_id] = ("token_user", dict(user_id=user_id))
        for jti in self.jtis[::2]:
            self.keys["token:blacklist:%s" % jti] = ("token_blacklist", dict(jti=jti))

    def load(self, topo):
        client = topo_client(topo)
        client.flushall()
        pipe = client.pipeline(transaction=False)
        for key, (kind, _fields) in self.keys.items():
            if kind == "token_user":
                user_id = key[len("token:user:"):]
                pipe.hset(key.encode("utf-8"), mapping=dict((j, 4102444800) for j in self.user_tokens[user_id]))
            else:
                pipe.set(key.encode("utf-8"), "3", ex=HOURS)
        pipe.execute()


def topo_client(topo):
    import redis
    return redis.Redis(host=topo.primary.host, port=topo.primary.port)


def key_set(topo):
    return set(key.decode("utf-8") for key in topo_client(topo).scan_iter(count=1000))


def engine_params(**values):
    out = dict((name, spec.get("default")) for name, spec in scan_engine_argument_spec().items())
    out.update(keyspace={})
    out.update(values)
    return out


def unlock_case(rng, world):
    user = rng.choice(world.users + [text(rng), world.users[0] + ":z", rng.choice(world.users) + ":"])
    ip = ip_forms(rng, rng.choice(world.ips)) if rng.random() < 0.5 else None
    args = engine_params(username=user, ip=ip, state="absent", clear_failures=rng.random() < 0.8)
    entries = ("lockout", "loginfail") if args["clear_failures"] else ("lockout",)
    expected = set(key for key, (kind, fields) in world.keys.items()
                   if kind in entries and fields["username"] == user and (ip is None or fields["ip"] == canonical(ip)))
    refused = ":" in user

    def run(keyspace, target, check):
        plan = LockoutRequest(keyspace, args).plan(target)
        assert plan.found.matched == len(expected)
        if not check and plan.changed:
            plan.apply(target)
            assert plan.verified is True and plan.remaining == 0
        return plan
    return "unlock %r ip=%r" % (user, ip), run, expected, set(), refused


def ratelimit_case(rng, world):
    scope = rng.choice(["global", "auth", "user", "all"])
    pool = []
    if scope in ("global", "auth", "all"):
        pool += [ip_forms(rng, rng.choice(world.ips)) for _index in range(3)]
    if scope in ("user", "all"):
        pool += [rng.choice(world.user_ids), text(rng)]
    subjects = list(dict.fromkeys(rng.sample(pool, rng.randint(1, 2))))
    args = engine_params(scope=scope, subject=subjects, state="absent")
    expected = set()
    for subject in subjects:
        for key, (kind, fields) in world.keys.items():
            if kind in ("ratelimit_global", "ratelimit_auth") and scope in (kind[10:], "all"):
                try:
                    if fields["ip"] == canonical(subject):
                        expected.add(key)
                except ValueError:
                    pass
            elif kind == "ratelimit_user" and scope in ("user", "all") and fields["user_id"] == subject:
                expected.add(key)

    def run(keyspace, target, check):
        plan = RatelimitRequest(keyspace, args).plan(target)
        assert plan.found.matched == len(expected)
        if not check and plan.changed:
            plan.apply(target)
            assert plan.deleted == len(expected)
        return plan
    return "ratelimit %s %r" % (scope, subjects), run, expected, set(), False


def token_case(rng, world):
    revoke = rng.random() < 0.5
    by_user = rng.random() < 0.4
    if by_user:
        user_id = rng.choice(world.user_ids + [text(rng)])
        jtis = None
        chosen = world.user_tokens.get(user_id, [])
    else:
        user_id = None
        jtis = rng.sample(world.jtis, rng.randint(1, 3))
        if rng.random() < 0.15:  # not a token id: refused with one line
            jtis.append(text(rng) + ":*")
        chosen = jtis
    args = dict(jti=jtis, user_id=user_id, state="present" if revoke else "absent", allow_unrevoke=True,
                refresh_lifetime=604800, keyspace={})
    blacklisted = set(key for key, (kind, _fields) in world.keys.items() if kind == "token_blacklist")
    wanted = set("token:blacklist:%s" % jti for jti in chosen)
    created = (wanted - blacklisted) if revoke else set()
    deleted = set() if revoke else (wanted & blacklisted)
    refused = any(jti for jti in (jtis or []) if ":" in jti)

    def run(keyspace, target, check):
        plan = TokenRequest(keyspace, args).plan(target)
        assert plan.changed == bool(created or deleted)
        if not check and plan.changed:
            plan.apply(target)
            assert plan.verified is True
        return plan
    return "token %s user=%r jti=%r" % ("revoke" if revoke else "unrevoke", user_id, jtis), run, deleted, created, \
        refused


@pytest.mark.parametrize("kind", ["standalone"])
def test_every_operation_touches_exactly_its_keys(redis_standalone, kind):
    rng = random.Random(SEED)
    keyspace = Keyspace()
    target = open_target(params(**redis_standalone.connection()))
    counts = dict(unlock=0, ratelimit=0, token=0, refused=0)
    world = None
    for case in range(CASES):
        if case % 50 == 0:  # a fresh world now and then: new names, new decoys
            world = World(rng)
        world.load(redis_standalone)
        maker = rng.choice([unlock_case, ratelimit_case, token_case])
        label, run, deleted, created, refused = maker(rng, world)
        before = key_set(redis_standalone)
        assert before == set(world.keys), label
        if refused:
            with pytest.raises(RedisOpsError):
                run(keyspace, target, True)
            assert key_set(redis_standalone) == before, label
            counts["refused"] += 1
            continue
        run(keyspace, target, True)
        assert key_set(redis_standalone) == before, "check mode changed something: " + label
        run(keyspace, target, False)
        after = key_set(redis_standalone)
        assert before - after == deleted, "%s: deleted %r, expected %r" % (label, before - after, deleted)
        assert after - before == created, "%s: created %r, expected %r" % (label, after - before, created)
        counts[maker.__name__.split("_")[0]] += 1
    assert sum(counts.values()) == CASES
    assert all(counts.values()), counts  # every kind of operation, and refusals, really ran
    print("key contract: %d cases (seed %d): %s" % (CASES, SEED, counts))
