# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_catalog + backup_retention: retention owns only what it made.

Every kind of hostile or foreign manifest in a backup directory is reported as foreign and neither it
nor anything it names is deleted - checked by the sha256 of every file in and around the directory -
while an old backup of ours beside them is deleted (so the test can fail).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import json
import os

import pytest

from ansible_collections.apigw.ops.plugins.module_utils import backup_catalog, backup_retention

NOW = 1800000000
DAY = 86400


def ours(directory, name, age_days, node=None, **override):
    """A backup of ours (content need not be an RDB: the retention's quick check compares size and sha256)."""
    base = backup_catalog.file_base(name, node)
    data = ("rdb of %s" % base).encode()
    with open(os.path.join(directory, base + ".rdb"), "wb") as handle:
        handle.write(data)
    manifest = {"format": backup_catalog.MANIFEST_FORMAT, "name": name, "file": base + ".rdb",
                "created_epoch": NOW - age_days * DAY, "verified": True, "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "files_in_backup": 1}
    manifest.update(override)
    write(os.path.join(directory, base + backup_catalog.MANIFEST_SUFFIX), manifest)
    return manifest


def write(path, content):
    data = content if isinstance(content, bytes) else json.dumps(content).encode()
    with open(path, "wb") as handle:
        handle.write(data)


def hashes(*roots):
    """{path: sha256 or 'dir' or 'link->target'} of everything under the roots (symlinks not followed)."""
    out = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for name in dirs + files:
                path = os.path.join(folder, name)
                if os.path.islink(path):
                    out[path] = "link->" + os.readlink(path)
                elif os.path.isdir(path):
                    out[path] = "dir"
                else:
                    with open(path, "rb") as handle:
                        out[path] = hashlib.sha256(handle.read()).hexdigest()
    return out


def marked(name, file_name, epoch=0, **extra):
    """A manifest with our marker (old: epoch 0), whatever it names."""
    out = {"format": backup_catalog.MANIFEST_FORMAT, "name": name, "file": file_name, "created_epoch": epoch,
           "verified": True, "size": 1, "sha256": "0" * 64}
    out.update(extra)
    return out


@pytest.fixture
def hostile(tmp_path):
    """(backup dir, outside dir, {manifest file name: expected reason fragment}) with every kind of foreign manifest."""
    outside = tmp_path / "outside"
    outside.mkdir()
    directory = tmp_path / "backup"
    directory.mkdir()
    victim = outside / "victim.csv"
    victim.write_text("customer data\n")
    (outside / "victim.rdb").write_bytes(b"REDIS0011 not ours")
    (outside / "elsewhere.manifest.json").write_text(json.dumps(marked("linked", "linked.rdb")))
    d = str(directory)
    expected = {}

    def hostile_manifest(manifest_name, content, reason):
        write(os.path.join(d, manifest_name), content)
        expected[manifest_name] = reason

    # the issue's repro, with and without our marker
    hostile_manifest("exports.manifest.json", {"name": "exports", "file": "../outside/victim.csv"}, "format marker")
    hostile_manifest("traversal.manifest.json", marked("traversal", "../outside/victim.csv"), "plain file name")
    hostile_manifest("absolute.manifest.json", marked("absolute", str(victim)), "plain file name")
    hostile_manifest("dotdot.manifest.json", marked("dotdot", ".."), "plain file name")
    hostile_manifest("backslash.manifest.json", marked("backslash", "..\\victim.rdb"), "plain file name")
    hostile_manifest("nul.manifest.json", marked("nul", "nul\x00.rdb"), "plain file name")
    # a name of ours, a file through a symlink to outside
    os.symlink(str(outside / "victim.rdb"), os.path.join(d, "linkout.rdb"))
    hostile_manifest("linkout.manifest.json", marked("linkout", "linkout.rdb"), "symlink")
    # the manifest itself is a symlink
    os.symlink(str(outside / "elsewhere.manifest.json"), os.path.join(d, "linked.manifest.json"))
    (directory / "linked.rdb").write_bytes(b"kept because its manifest is a link")
    expected["linked.manifest.json"] = "symlink"
    # markers missing or from another version / tool
    (directory / "nomarker.rdb").write_bytes(b"another tool's dump")
    hostile_manifest("nomarker.manifest.json", {"name": "nomarker", "file": "nomarker.rdb", "created_epoch": 0,
                                                "verified": True}, "format marker")
    (directory / "legacy.rdb").write_bytes(b"format 1")
    hostile_manifest("legacy.manifest.json", dict(marked("legacy", "legacy.rdb"), format=1), "format marker")
    # naming: the file is not the backup's, the manifest is not the file's, the name is not a backup name
    (directory / "payroll.rdb").write_bytes(b"payroll")
    hostile_manifest("thief.manifest.json", marked("thief", "payroll.rdb"), "naming")
    (directory / "other.rdb").write_bytes(b"other")
    hostile_manifest("mismatch.manifest.json", marked("other", "other.rdb"), "must be named")
    hostile_manifest("badname.manifest.json", marked("../badname", "badname.rdb"), "not a backup name")
    hostile_manifest("notstr.manifest.json", marked(["x"], "notstr.rdb"), "not a backup name")
    # age unknown: never expired, never ours
    (directory / "noepoch.rdb").write_bytes(b"no epoch")
    noepoch = marked("noepoch", "noepoch.rdb")
    del noepoch["created_epoch"]
    hostile_manifest("noepoch.manifest.json", noepoch, "created_epoch")
    for label, value in (("strepoch", "yesterday"), ("boolepoch", True), ("negepoch", -5), ("floatepoch", 1.5),
                         ("nullepoch", None)):
        (directory / (label + ".rdb")).write_bytes(label.encode())
        hostile_manifest(label + ".manifest.json", marked(label, label + ".rdb", epoch=value), "created_epoch")
    # not JSON, not an object, too big, not UTF-8
    hostile_manifest("broken.manifest.json", b'{"name": "broken", "file": "\x01', "not JSON")
    hostile_manifest("array.manifest.json", [marked("array", "array.rdb")], "not a JSON object")
    hostile_manifest("huge.manifest.json", dict(marked("huge", "huge.rdb"), pad="x" * (300 * 1024)), "bytes")
    hostile_manifest("latin1.manifest.json", b'{"name": "caf\xe9", "file": "caf\xe9.rdb"}', "not UTF-8")
    # directories where files should be
    (directory / "adir.rdb").mkdir()
    (directory / "adir.rdb" / "inside").write_text("keep me")
    hostile_manifest("adir.manifest.json", marked("adir", "adir.rdb"), "not a regular file")
    (directory / "dirmanifest.manifest.json").mkdir()
    expected["dirmanifest.manifest.json"] = "not a regular file"
    # an unmanaged file and a foreign file: never touched
    (directory / "dump-20200101.rdb").write_bytes(b"operator's own copy")
    (directory / "notes.txt").write_text("hello")
    return d, str(outside), expected


def test_every_hostile_manifest_is_foreign_and_nothing_of_theirs_is_deleted(hostile):
    directory, outside, expected = hostile
    ours(directory, "dump-old", 40)
    ours(directory, "dump-new", 0)
    catalog = backup_catalog.list_backups(directory)
    assert [s.name for s in catalog.sets] == ["dump-old", "dump-new"]
    reasons = dict((f["manifest"], f["reason"]) for f in catalog.foreign)
    assert sorted(reasons) == sorted(expected)
    for manifest_name, fragment in expected.items():
        assert fragment in reasons[manifest_name], (manifest_name, reasons[manifest_name])
    assert "payroll.rdb" in catalog.unmanaged and "dump-20200101.rdb" in catalog.unmanaged

    before = hashes(directory, outside)
    plan = backup_retention.PrunePlan(directory, 0, 1, NOW)
    assert plan.deleted == ["dump-old"] and plan.result()["foreign"] == catalog.foreign
    plan.apply()
    after = hashes(directory, outside)
    gone = set(before) - set(after)
    assert gone == {os.path.join(directory, "dump-old.rdb"), os.path.join(directory, "dump-old.manifest.json")}
    assert all(after[path] == digest for path, digest in before.items() if path not in gone)


def test_unknown_age_never_expires_even_when_called_directly():
    entry = backup_catalog.BackupSet("x")
    entry.verified = True
    entry.files.append(type("F", (), {"manifest": {"created_epoch": None}})())
    other = backup_catalog.BackupSet("y")
    other.verified = True
    other.files.append(type("F", (), {"manifest": {"created_epoch": NOW}})())
    keep, delete = backup_retention.retention([entry, other], 0, 1, NOW + 10 * DAY)
    assert delete == [] and [s.name for s in keep] == ["x", "y"]


def test_cluster_files_of_ours_are_owned(tmp_path):
    directory = str(tmp_path)
    for node in ("10.0.0.1:7000", "10.0.0.2:7001"):
        ours(directory, "dump-20260101", 30, node=node, files_in_backup=2)
    ours(directory, "dump-20260115", 0)
    catalog = backup_catalog.list_backups(directory)
    assert catalog.foreign == [] and [len(s.files) for s in catalog.sets] == [2, 1]
    plan = backup_retention.PrunePlan(directory, 7, 1, NOW)
    assert plan.deleted == ["dump-20260101"]
    plan.apply()
    assert sorted(os.listdir(directory)) == ["dump-20260115.manifest.json", "dump-20260115.rdb"]


def test_a_file_of_ours_swapped_for_a_symlink_makes_the_backup_foreign(tmp_path):
    directory = tmp_path / "backup"
    directory.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("x")
    ours(str(directory), "dump-old", 40)
    ours(str(directory), "dump-new", 0)
    os.unlink(str(directory / "dump-old.rdb"))
    os.symlink(str(victim), str(directory / "dump-old.rdb"))
    plan = backup_retention.PrunePlan(str(directory), 7, 1, NOW)
    assert plan.deleted == [] and [f["manifest"] for f in plan.result()["foreign"]] == ["dump-old.manifest.json"]
    plan.apply()
    assert victim.read_text() == "x" and os.path.islink(str(directory / "dump-old.rdb"))


def test_latest_verified_ignores_a_broken_newer_backup(tmp_path):
    directory = str(tmp_path)
    ours(directory, "dump-a", 2)
    ours(directory, "dump-b", 1, sha256="f" * 64)  # the file no longer matches its manifest
    info = backup_catalog.describe_sets(directory, name="dump-missing", now_epoch=NOW)
    assert info["backups"] == [] and info["latest_verified"] == "dump-a"
