# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup: names, retention rules, redis.conf handling, the replication reader."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import datetime

import pytest

from ansible_collections.apigw.ops.plugins.module_utils import (
    backup_catalog, backup_retention, backup_snapshot, rdb, redis_conf)
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError

DAY = 86400
NOW = 1800000000


class FakeSet(backup_catalog.BackupSet):
    """A set with a given age and verification (retention is pure logic)."""

    def __init__(self, name, age_days, verified=True):
        backup_catalog.BackupSet.__init__(self, name)
        self._epoch = NOW - age_days * DAY
        self.verified = verified

    @property
    def created_epoch(self):
        return self._epoch


def names(sets):
    return [s.name for s in sets]


def test_backup_name_expands_strftime_in_utc():
    now = datetime.datetime(2026, 1, 15, 2, 0, tzinfo=datetime.timezone.utc)
    assert backup_catalog.backup_name("dump-%Y%m%d", now) == "dump-20260115"
    assert backup_catalog.backup_name("pre-maintenance-%Y%m%d-%H%M", now) == "pre-maintenance-20260115-0200"
    for bad in ("a/b", "../x", "", "x.manifest.json"):
        with pytest.raises(RedisOpsError):
            backup_catalog.backup_name(bad, now)


def test_retention_keeps_recent_and_keep_min():
    sets = [FakeSet("d%d" % age, age) for age in (30, 20, 9, 6, 1)]
    keep, delete = backup_retention.retention(sets, 7, 3, NOW)
    assert names(delete) == ["d30", "d20"] and names(keep) == ["d9", "d6", "d1"]
    keep, delete = backup_retention.retention(sets, 7, 1, NOW)
    assert names(delete) == ["d30", "d20", "d9"]


def test_retention_never_deletes_last_verified_when_all_are_old():
    sets = [FakeSet("a", 40), FakeSet("b", 30), FakeSet("c", 20, verified=False)]
    keep, delete = backup_retention.retention(sets, 7, 1, NOW)
    assert names(keep) == ["b"] and names(delete) == ["a", "c"]
    keep, delete = backup_retention.retention(sets, 0, 0, NOW)  # keep_min is at least 1
    assert names(keep) == ["b"]


def test_retention_unverified_do_not_count_for_keep_min():
    sets = [FakeSet("a", 40), FakeSet("b", 30), FakeSet("c", 20, verified=False), FakeSet("d", 10, verified=False)]
    keep, _delete = backup_retention.retention(sets, 7, 2, NOW)
    assert names(keep) == ["a", "b"]


def test_retention_protected_new_backup_counts():
    sets = [FakeSet("a", 40), FakeSet("b", 30)]
    keep, delete = backup_retention.retention(sets, 7, 2, NOW, protect=["new"])
    assert names(keep) == ["b"] and names(delete) == ["a"]


def test_prune_plan_without_any_verified_backup_deletes_nothing(tmp_path):
    plan = backup_retention.PrunePlan(str(tmp_path), 7, 1, NOW,
                                      catalog=backup_catalog.Catalog([FakeSet("x", 40, verified=False)], [], []))
    assert not plan.changed and plan.deleted == []


def test_redis_config_aof_override_round_trip(tmp_path):
    inc = tmp_path / "extra.conf"
    inc.write_text("appendonly yes\n")
    conf = tmp_path / "redis.conf"
    conf.write_text('dir "%s"\ndbfilename dump.rdb\nappendonly no\ninclude %s\n' % (tmp_path, inc))
    config = redis_conf.RedisConfig(str(conf))
    assert config.appendonly and config.directory() == str(tmp_path)
    disabled = config.text_with_aof_disabled()
    conf.write_text(disabled)
    config = redis_conf.RedisConfig(str(conf))
    assert not config.appendonly and config.aof_disabled_for_restore
    enabled = config.text_with_aof_enabled()
    assert redis_conf.AOF_MARKER not in enabled and enabled.count("appendonly") == 1  # the include says yes
    conf.write_text(enabled)
    assert redis_conf.RedisConfig(str(conf)).appendonly


def test_aof_enabled_adds_the_directive_when_needed(tmp_path):
    conf = tmp_path / "redis.conf"
    conf.write_text("port 0\n")
    text = redis_conf.RedisConfig(str(conf)).text_with_aof_enabled()
    assert text.endswith("appendonly yes\n")


@pytest.mark.parametrize("diskless", ["yes", "no"])
def test_replication_reader_both_wire_formats(redis_fresh, diskless):
    server = redis_fresh.primary
    server.cli("CONFIG", "SET", "repl-diskless-sync", diskless)
    server.cli("CONFIG", "SET", "repl-diskless-sync-delay", "0")
    for i in range(500):
        server.cli("SET", "k%d" % i, "v%d" % i)
    params = dict(redis_fresh.connection(), socket_timeout=10.0)
    verifier = backup_snapshot.snapshot_replication(params, None, None, "test")
    streamed = verifier.finish()
    assert streamed["ok"] and streamed["keys_in_file"] == 500
    again = rdb.verify(verifier.data())
    assert again["ok"] and again["sha256"] == streamed["sha256"] and again["keys_in_file"] == 500


def test_replication_reader_url_and_wrong_password(redis_password):
    server = redis_password.primary
    server.cli("SET", "a", "1")
    verifier = backup_snapshot.snapshot_replication(dict(url=server.url(), socket_timeout=10.0), None, None, "test")
    assert verifier.finish()["ok"] and rdb.verify(verifier.data())["ok"]
    with pytest.raises(RedisOpsError) as exc:
        backup_snapshot.snapshot_replication(dict(redis_password.connection(), password="nope", socket_timeout=5.0),
                                             None, None, "test")
    assert "Authentication to Redis at" in str(exc.value) and "nope" not in str(exc.value)


def test_bgsave_follows_the_growing_temp_file(redis_fresh):
    import redis
    server = redis_fresh.primary
    client = redis.Redis(**dict(redis_fresh.connection(), decode_responses=True))
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set("k%d" % i, "v" * 100)
    pipe.execute()
    server.cli("CONFIG", "SET", "rdb-key-save-delay", "300")  # ~1 s of saving: the file is followed while it grows
    verifier = backup_snapshot.snapshot_bgsave(client, "test", 3600, rdb.StreamVerifier)
    result = verifier.finish()
    assert result["ok"] and result["keys_in_file"] == 3000
    with open(server.dir + "/dump.rdb", "rb") as handle:
        assert handle.read() == verifier.data()
