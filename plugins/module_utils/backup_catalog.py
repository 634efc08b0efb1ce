# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup catalog: backup names, the manifest format, and which files of a directory are ours.

On disk, a backup named N of a standalone server is ``N.rdb`` plus its manifest
``N.manifest.json``; of a cluster, one ``N.<host>-<port>.rdb`` (+ manifest) per primary.

A manifest makes a file one of our backups only when everything about it says we wrote it
(``parse_manifest``): it carries ``format: apigw.ops.redis_backup/2``, its ``name`` is a valid
backup name, its ``file`` is ``<name>.rdb`` or ``<name>.<node>.rdb`` - a plain name in the
directory, not a symlink, not a directory, resolving inside the directory - and its own file
name is that of the RDB with ``.manifest.json``; ``created_epoch`` is an integer.  Anything else
is *foreign*: listed with the reason, never deleted, never restored by name.  Retention runs as
root on shared directories; a manifest someone else wrote must not make it delete their files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json
import os
import re
import stat
import time

from ansible_collections.apigw.ops.plugins.module_utils import rdb
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = "apigw.ops.redis_backup/2"
MANIFEST_MAX_BYTES = 256 * 1024   # ours are ~1 KB (a cluster node's slot list included)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:-]*$")
NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_name(name):
    return isinstance(name, str) and bool(NAME_RE.match(name)) and not name.endswith(MANIFEST_SUFFIX) \
        and ".." not in name


def backup_name(template, now=None):
    """``template`` with strftime fields expanded in UTC (default template: dump-%Y%m%d)."""
    name = (now or utcnow()).strftime(template)
    if not valid_name(name):
        raise RedisOpsError("Invalid backup name %r: use letters, digits and . _ @ + : - "
                            "(no slash, no '..'), for example dump-%%Y%%m%%d." % name)
    return name


def file_base(name, node=None):
    return name if node is None else "%s.%s" % (name, node.replace(":", "-"))


def sha256_file(path):
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(rdb.CHUNK), b""):
            sha.update(block)
    return sha.hexdigest()


# -- the manifest format -----------------------------------------------------------------------

def _plain_file_name(value):
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value \
        and "\\" not in value and "\x00" not in value and not os.path.isabs(value)


def _file_matches_name(file_name, name):
    """``file`` is ``<name>.rdb`` or ``<name>.<node>.rdb`` - what ``file_base`` makes."""
    if not file_name.endswith(".rdb"):
        return False
    base = file_name[:-4]
    if base == name:
        return True
    return base.startswith(name + ".") and bool(NODE_RE.match(base[len(name) + 1:]))


def _valid_epoch(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_manifest(directory, manifest_name):
    """(manifest dict, None) when ``directory/manifest_name`` is one of ours, else (None, reason)."""
    path = os.path.join(directory, manifest_name)
    try:
        info = os.lstat(path)
    except OSError as exc:
        return None, "cannot stat: %s" % (exc.strerror or exc)
    if stat.S_ISLNK(info.st_mode):
        return None, "the manifest is a symlink"
    if not stat.S_ISREG(info.st_mode):
        return None, "the manifest is not a regular file"
    if info.st_size > MANIFEST_MAX_BYTES:
        return None, "the manifest is %d bytes (ours are under %d)" % (info.st_size, MANIFEST_MAX_BYTES)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MANIFEST_MAX_BYTES + 1)
        manifest = json.loads(raw.decode("utf-8"))
    except (IOError, OSError) as exc:
        return None, "cannot read: %s" % (exc.strerror or exc)
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except ValueError as exc:
        return None, "not JSON (%s)" % str(exc).splitlines()[0][:120]
    if not isinstance(manifest, dict):
        return None, "not a JSON object"
    if manifest.get("format") != MANIFEST_FORMAT:
        return None, "no %s format marker" % MANIFEST_FORMAT
    name, file_name = manifest.get("name"), manifest.get("file")
    if not valid_name(name):
        return None, "name is not a backup name"
    if not _plain_file_name(file_name):
        return None, "file is not a plain file name in the backup directory"
    if not _file_matches_name(file_name, name):
        return None, "file %s does not follow the naming of backup %s" % (file_name, name)
    if manifest_name != file_name[:-4] + MANIFEST_SUFFIX:
        return None, "the manifest of %s must be named %s" % (file_name, file_name[:-4] + MANIFEST_SUFFIX)
    if not _valid_epoch(manifest.get("created_epoch")):
        return None, "created_epoch is missing or not a non-negative integer"
    data_path = os.path.join(directory, file_name)
    if os.path.lexists(data_path):
        data_info = os.lstat(data_path)
        if stat.S_ISLNK(data_info.st_mode):
            return None, "file %s is a symlink" % file_name
        if not stat.S_ISREG(data_info.st_mode):
            return None, "file %s is not a regular file" % file_name
        if os.path.dirname(os.path.realpath(data_path)) != os.path.realpath(directory):
            return None, "file %s resolves outside the backup directory" % file_name
    return manifest, None


# -- listing -----------------------------------------------------------------------------------

class BackupFile:
    """One RDB file of a backup with its (validated) manifest."""

    def __init__(self, directory, manifest_name, manifest):
        self.directory = directory
        self.manifest_path = os.path.join(directory, manifest_name)
        self.manifest = manifest
        self.path = os.path.join(directory, manifest["file"])
        self.problem = None

    def quick_check(self):
        """Manifest says verified, file present with the recorded size and sha256."""
        if not self.manifest.get("verified"):
            self.problem = "manifest records a failed verification"
        elif not os.path.isfile(self.path):
            self.problem = "file %s is missing" % os.path.basename(self.path)
        elif os.path.getsize(self.path) != self.manifest.get("size"):
            self.problem = "size differs from the manifest (truncated or replaced)"
        elif sha256_file(self.path) != self.manifest.get("sha256"):
            self.problem = "sha256 differs from the manifest (modified or corrupt)"
        return self.problem is None

    def full_check(self, check_rdb="auto", check_rdb_path=None):
        """Re-read the file once and re-verify it (magic, CRC64, redis-check-rdb) and its sha256."""
        result = rdb.verify_file(self.path, check_rdb, check_rdb_path)
        if not result["ok"]:
            self.problem = result["reason"]
        elif result["sha256"] != self.manifest.get("sha256"):
            self.problem = "sha256 differs from the manifest"
            result["ok"] = False
        return result

    def info(self):
        out = dict(self.manifest)
        out["path"] = self.path
        out["manifest_path"] = self.manifest_path
        return out


class BackupSet:
    """All files of one named backup (one per primary)."""

    def __init__(self, name):
        self.name = name
        self.files = []
        self.verified = None

    @property
    def created_epoch(self):
        return min(f.manifest["created_epoch"] for f in self.files)

    def expected_files(self):
        counts = [f.manifest.get("files_in_backup") for f in self.files]
        return max([c for c in counts if isinstance(c, int) and not isinstance(c, bool)] or [1])

    def check(self, full=False, check_rdb="auto", check_rdb_path=None):
        results = [f.full_check(check_rdb, check_rdb_path) if full else f.quick_check() for f in self.files]
        complete = len(self.files) >= self.expected_files()
        self.verified = complete and all(f.problem is None for f in self.files)
        return results

    def problems(self):
        found = ["%s: %s" % (os.path.basename(f.path), f.problem) for f in self.files if f.problem]
        if len(self.files) < self.expected_files():
            found.append("incomplete: %d of %d files" % (len(self.files), self.expected_files()))
        return found


class Catalog:
    """What a backup directory holds: our backup sets (oldest first), foreign manifests (with the
    reason they are not ours) and .rdb files no manifest of ours names."""

    def __init__(self, sets, foreign, unmanaged):
        self.sets = sets
        self.foreign = foreign
        self.unmanaged = unmanaged

    def latest_verified(self):
        """The newest set that passes the quick check (checked newest first, stops at the first)."""
        for entry in reversed(self.sets):
            if entry.verified is None:
                entry.check()
            if entry.verified:
                return entry
        return None


def list_backups(directory):
    """The Catalog of a backup directory (empty when it does not exist)."""
    if not os.path.isdir(directory):
        return Catalog([], [], [])
    names = sorted(os.listdir(directory))
    sets = {}
    foreign = []
    managed = set()
    for manifest_name in names:
        if not manifest_name.endswith(MANIFEST_SUFFIX) or manifest_name.startswith("."):
            continue
        manifest, reason = parse_manifest(directory, manifest_name)
        if manifest is None:
            foreign.append({"manifest": manifest_name, "reason": reason})
            continue
        entry = BackupFile(directory, manifest_name, manifest)
        managed.add(manifest["file"])
        sets.setdefault(manifest["name"], BackupSet(manifest["name"])).files.append(entry)
    unmanaged = [n for n in names if n.endswith(".rdb") and n not in managed and not n.startswith(".")]
    ordered = sorted(sets.values(), key=lambda s: (s.created_epoch, s.name))
    return Catalog(ordered, foreign, unmanaged)


def describe_sets(directory, name=None, reverify=False, check_rdb="auto", check_rdb_path=None, now_epoch=None):
    """What redis_backup_info returns: the backups (all, or the one named), foreign manifests,
    unmanaged files and the newest verified backup of the whole directory."""
    now_epoch = time.time() if now_epoch is None else now_epoch
    catalog = list_backups(directory)
    out = []
    for entry in catalog.sets:
        if name and entry.name != name:
            continue
        results = entry.check(reverify, check_rdb, check_rdb_path)
        files = []
        for item, res in zip(entry.files, results):
            info = item.info()
            info["verification"] = {"ok": item.problem is None, "problem": item.problem,
                                    "checks": res["checks"] if isinstance(res, dict) else "sha256 vs manifest"}
            files.append(info)
        age = max(0, now_epoch - entry.created_epoch)
        out.append({"name": entry.name, "created_at": iso(entry.created_epoch), "age_seconds": int(age),
                    "age_days": round(age / 86400.0, 2), "verified": entry.verified,
                    "problems": entry.problems(), "files": files})
    latest = catalog.latest_verified()
    return {"backups": out, "foreign": catalog.foreign, "unmanaged": catalog.unmanaged,
            "latest_verified": latest.name if latest else None}
