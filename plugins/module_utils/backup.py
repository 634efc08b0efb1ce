# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis backups: create (BGSAVE or replication), verify, prune, restore; manifests.

Every operation is a plan built read-only (``*_plan``) and applied by ``plan.apply()``;
check mode runs the same plan and stops before ``apply``.

On disk, a backup named N of a standalone server is ``N.rdb`` plus its manifest
``N.manifest.json``; of a cluster, one ``N.<host>-<port>.rdb`` (+ manifest) per primary.
Manifests are what make a file a backup: retention and listing only ever touch files
that have one; any other file in the directory is left alone and reported as unmanaged.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import glob
import hashlib
import json
import os
import re
import socket
import time

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.module_utils import rdb
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError, open_raw_connection, translate_errors)

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_FORMAT = 1
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:-]*$")
AOF_MARKER = "# apigw.ops redis_backup: AOF disabled so Redis loads the restored dump; " \
             "re-enable with state=aof_enabled after start"
POLL = 0.05


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def backup_name(template, now=None):
    """``template`` with strftime fields expanded in UTC (default template: dump-%Y%m%d)."""
    name = (now or utcnow()).strftime(template)
    if not NAME_RE.match(name) or name.endswith(MANIFEST_SUFFIX):
        raise RedisOpsError("Invalid backup name %r: use letters, digits and . _ @ + : - "
                            "(no slash), for example dump-%%Y%%m%%d." % name)
    return name


def file_base(name, node=None):
    return name if node is None else "%s.%s" % (name, node.replace(":", "-"))


# -- listing ---------------------------------------------------------------------------------

def _sha256_file(path):
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(rdb.CHUNK), b""):
            sha.update(block)
    return sha.hexdigest()


class BackupFile:
    """One RDB file of a backup with its manifest."""

    def __init__(self, directory, manifest_path, manifest):
        self.manifest_path = manifest_path
        self.manifest = manifest
        self.path = os.path.join(directory, manifest.get("file", ""))
        self.problem = None

    def quick_check(self):
        """Manifest says verified, file present with the recorded size and sha256."""
        if not self.manifest.get("verified"):
            self.problem = "manifest records a failed verification"
        elif not os.path.isfile(self.path):
            self.problem = "file %s is missing" % os.path.basename(self.path)
        elif os.path.getsize(self.path) != self.manifest.get("size"):
            self.problem = "size differs from the manifest (truncated or replaced)"
        elif _sha256_file(self.path) != self.manifest.get("sha256"):
            self.problem = "sha256 differs from the manifest (modified or corrupt)"
        return self.problem is None

    def full_check(self, check_rdb="auto", check_rdb_path=None):
        """Re-read and re-verify the file (magic, CRC64, redis-check-rdb) and the sha256."""
        try:
            data = rdb.read_file(self.path)
        except rdb.RdbError as exc:
            self.problem = str(exc)
            return None
        result = rdb.verify(data, check_rdb, check_rdb_path)
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
        return min(f.manifest.get("created_epoch", 0) for f in self.files)

    def expected_files(self):
        return max(f.manifest.get("files_in_backup", 1) for f in self.files)

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


def list_backups(directory):
    """(sets sorted oldest first, unmanaged .rdb file names) of a backup directory."""
    if not os.path.isdir(directory):
        return [], []
    sets = {}
    managed = set()
    for manifest_path in sorted(glob.glob(os.path.join(glob.escape(directory), "*" + MANIFEST_SUFFIX))):
        try:
            with open(manifest_path) as handle:
                manifest = json.load(handle)
            if not isinstance(manifest, dict) or "name" not in manifest or "file" not in manifest:
                continue
        except (IOError, OSError, ValueError):
            continue
        entry = BackupFile(directory, manifest_path, manifest)
        managed.add(os.path.basename(entry.path))
        sets.setdefault(manifest["name"], BackupSet(manifest["name"])).files.append(entry)
    unmanaged = sorted(n for n in os.listdir(directory)
                       if n.endswith(".rdb") and n not in managed and not n.startswith("."))
    return sorted(sets.values(), key=lambda s: (s.created_epoch, s.name)), unmanaged


# -- retention ---------------------------------------------------------------------------------

def retention(sets, keep_days, keep_min, now_epoch, protect=()):
    """(keep, delete) lists of sets.  Deleted: older than keep_days and not among the keep_min
    newest verified sets; the newest verified set and ``protect`` names are never deleted.
    ``sets`` must have been checked (``verified`` set)."""
    protect = list(protect)
    keep_names = set(protect)
    others = [s for s in sets if s.verified and s.name not in keep_names]
    room = max(keep_min or 1, 1) - len(protect)
    if room > 0:
        keep_names.update(s.name for s in others[-room:])
    delete = []
    for entry in sets:
        if entry.name in keep_names:
            continue
        if keep_days is not None and now_epoch - entry.created_epoch > keep_days * 86400:
            delete.append(entry)
    keep = [s for s in sets if s not in delete]
    return keep, delete


class PrunePlan:
    def __init__(self, directory, keep_days, keep_min, now_epoch=None, protect=(), sets=None):
        self.directory = directory
        if sets is None:
            sets, _unmanaged = list_backups(directory)
            for entry in sets:
                entry.check()
        self.sets = sets
        now_epoch = time.time() if now_epoch is None else now_epoch
        has_verified = any(s.verified for s in sets) or bool(protect)
        # pruning needs a verified backup to exist: never prune down to nothing good
        self.keep, self.delete = retention(sets, keep_days, keep_min, now_epoch, protect) \
            if has_verified else (list(sets), [])
        self.deleted = [s.name for s in self.delete]

    @property
    def changed(self):
        return bool(self.delete)

    def result(self):
        return {"path": self.directory, "deleted": self.deleted, "kept": [s.name for s in self.keep]}

    def diff(self):
        return {"before": {"backups": [s.name for s in self.sets]}, "after": {"backups": [s.name for s in self.keep]}}

    def apply(self):
        for entry in self.delete:
            for item in entry.files:
                try:
                    atomic_file.remove_file(item.path)
                    atomic_file.remove_file(item.manifest_path)
                except atomic_file.AtomicFileError as exc:
                    raise RedisOpsError("Pruning backup %s failed: %s" % (entry.name, exc))


# -- taking a snapshot -------------------------------------------------------------------------

def _info(node, section):
    return node.info(section)


def _wait_persistence(node, done, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        info = _info(node, "persistence")
        if done(info):
            return info
        if time.monotonic() > deadline:
            raise RedisOpsError("Timed out after %ds waiting for %s; raise timeout." % (timeout, what))
        time.sleep(POLL)


def _config_get(node, key):
    value = node.config_get(key)
    return value.get(key) if isinstance(value, dict) else None


def _temp_rdb(directory, since):
    """The temporary file a BGSAVE child is writing (temp-<pid>.rdb), newest first, or None."""
    found = []
    for path in glob.glob(os.path.join(glob.escape(directory), "temp-[0-9]*.rdb")):
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            continue
        if mtime >= since - 1:
            found.append((mtime, path))
    return max(found)[1] if found else None


def _drain(handle, verifier):
    read = 0
    while True:
        chunk = handle.read(1 << 20)
        if not chunk:
            return read
        verifier.feed(chunk)
        read += len(chunk)


def snapshot_bgsave(node, description, timeout, new_verifier, require_local=True):
    """BGSAVE on the node, wait, and read the snapshot from its dir (readable on this host).

    The file the BGSAVE child writes (temp-<pid>.rdb) is followed while it grows and fed to the
    verifier, so verification runs alongside the save; when BGSAVE ends, that file has been renamed
    to dir/dbfilename - checked by inode, else the dump file is read afresh.  Returns the verifier
    (finish() not yet called).
    """
    directory, dbfilename = _config_get(node, "dir"), _config_get(node, "dbfilename")
    if not directory or not dbfilename:
        raise RedisOpsError("Redis at %s did not report dir/dbfilename (CONFIG GET disabled?): "
                            "use method=replication." % description)
    path = os.path.join(directory, dbfilename)
    if require_local and not os.access(directory, os.R_OK | os.X_OK):
        raise RedisOpsError("method=bgsave needs the Redis data directory %s of %s readable on this "
                            "host: run the task on the Redis host, or use method=replication."
                            % (directory, description))
    server_time = int(node.time()[0])
    while True:
        try:
            node.bgsave()
            break
        except Exception as exc:  # pylint: disable=broad-except
            text = str(exc).lower()
            if "in progress" not in text and "already" not in text:
                raise
            _wait_persistence(node, lambda i: not i.get("rdb_bgsave_in_progress")
                              and not i.get("aof_rewrite_in_progress"), timeout, "a running BGSAVE/AOF rewrite")
    started = time.time()
    verifier = new_verifier()
    handle = None
    deadline = time.monotonic() + timeout
    try:
        while True:
            info = _info(node, "persistence")
            if handle is None:
                temp = _temp_rdb(directory, started)
                if temp:
                    try:
                        handle = open(temp, "rb")  # noqa: SIM115 - followed across polls, closed below
                    except (IOError, OSError):
                        handle = None
            grew = _drain(handle, verifier) if handle else 0
            if not info.get("rdb_bgsave_in_progress"):
                break
            if time.monotonic() > deadline:
                raise RedisOpsError("Timed out after %ds waiting for BGSAVE; raise timeout." % timeout)
            if not grew:
                time.sleep(POLL)
        if info.get("rdb_last_bgsave_status") != "ok":
            raise RedisOpsError("BGSAVE failed on %s (rdb_last_bgsave_status:%s): check its log - usually its dir "
                                "%s is not writable or the disk is full; no backup was written."
                                % (description, info.get("rdb_last_bgsave_status"), directory))
        followed = False
        if handle is not None:
            _drain(handle, verifier)
            try:
                followed = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
            except OSError:
                followed = False
        if not followed:  # too quick to follow, or renamed over since: read the dump itself
            verifier.abort()
            verifier = new_verifier()
            try:
                with open(path, "rb") as dump:
                    _drain(dump, verifier)
            except (IOError, OSError) as exc:
                raise RedisOpsError("BGSAVE on %s succeeded but %s cannot be read (%s); use method=replication."
                                    % (description, path, exc.strerror or exc))
    except Exception:
        verifier.abort()
        raise
    finally:
        if handle is not None:
            handle.close()
    try:
        ctime = int(rdb.parse_header(verifier.data()[:4096])["aux"].get("ctime", 0))
    except (rdb.RdbError, ValueError):
        ctime = 0
    if ctime and ctime < server_time - 1:
        verifier.abort()
        raise RedisOpsError("%s is not the snapshot %s just wrote (it is from %s): is Redis on another "
                            "host? Use method=replication." % (path, description, iso(ctime)))
    return verifier


def snapshot_replication(params, host, port, description, new_verifier=None):
    """A point-in-time RDB over the replication protocol (what redis-cli --rdb does), fed to a
    verifier as it arrives.  Returns the verifier (finish() not yet called)."""
    verifier = (new_verifier or rdb.StreamVerifier)()
    conn = open_raw_connection(params, host, port)
    received = 0
    try:
        with translate_errors(description):
            for capability in (("capa", "eof"), ("rdb-only", "1")):
                try:
                    conn.command("REPLCONF", *capability)
                except RedisOpsError:
                    pass  # older servers: a plain disk-based transfer still works
            conn.send("SYNC")
            while True:
                line = conn.readline()
                if not line:
                    continue  # keepalive newline while the server prepares the snapshot
                if line.startswith(b"-"):
                    raise RedisOpsError("Redis at %s refused SYNC (%s): the user needs the sync/psync "
                                        "permission (or use method=bgsave)."
                                        % (description, line[1:].decode("utf-8", "replace")))
                if line.startswith(b"$"):
                    break
            if line.startswith(b"$EOF:"):  # diskless: the payload ends with a 40-byte mark
                mark = line[5:]
                pending = b""
                while True:
                    chunk = conn.recv()
                    if not chunk:
                        raise RedisOpsError("Redis at %s closed the connection during the transfer after %d bytes; "
                                            "no backup file was written." % (description, received))
                    received += len(chunk)
                    pending += chunk
                    if len(pending) > len(mark):
                        verifier.feed(pending[:-len(mark)])
                        pending = pending[-len(mark):]
                    if pending == mark:
                        break
            else:
                expected = int(line[1:])
                while received < expected:
                    chunk = conn.recv(min(1 << 20, expected - received))
                    if not chunk:
                        raise RedisOpsError("Redis at %s closed the connection during the transfer after %d of %d "
                                            "bytes; no backup file was written." % (description, received, expected))
                    verifier.feed(chunk)
                    received += len(chunk)
    except Exception:
        verifier.abort()
        raise
    finally:
        conn.close()
    return verifier


# -- create ------------------------------------------------------------------------------------

def _slots(node):
    """Slot ranges served by this cluster node, and its node id."""
    raw = node.execute_command("CLUSTER", "NODES")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    for line in str(raw).splitlines():
        fields = line.split()
        if len(fields) >= 8 and "myself" in fields[2]:
            ranges = []
            for item in fields[8:]:
                if item.startswith("["):
                    continue  # a slot being migrated
                start, _sep, end = item.partition("-")
                ranges.append([int(start), int(end or start)])
            return fields[0], ranges
    return None, []


def node_label(target, node):
    """host:port of a primary (the current master for Sentinel)."""
    if target.mode == "sentinel":
        return "%s:%s" % node.connection_pool.get_master_address()
    return target.node_name(node)


def _source(target, node, method):
    name = node_label(target, node)
    host, _sep, port = name.rpartition(":")
    server = _info(node, "server")
    replication = _info(node, "replication")
    keyspace = _info(node, "keyspace")
    source = {"host": host, "port": int(port) if port.isdigit() else port,
              "redis_version": server.get("redis_version"), "run_id": server.get("run_id"),
              "role": replication.get("role"), "mode": target.mode}
    keys = {}
    for db, stats in sorted(keyspace.items()):
        if isinstance(stats, dict):
            keys[db] = {"keys": stats.get("keys", 0), "expires": stats.get("expires", 0)}
    manifest = {"source": source, "keys": keys, "method": method}
    if target.mode == "cluster":
        manifest["node_id"], manifest["slots"] = _slots(node)
    return manifest


def resolve_method(method, node):
    """'bgsave' when the server's dir is readable on this host (for auto), else 'replication'."""
    if method != "auto":
        return method
    try:
        directory = _config_get(node, "dir")
    except Exception:  # pylint: disable=broad-except
        return "replication"
    if directory and os.path.isdir(directory) and os.access(directory, os.R_OK | os.X_OK):
        return "bgsave"
    return "replication"


class CreatePlan:
    """state=present: a verified backup named ``name`` exists (one file per primary)."""

    def __init__(self, target, params, now=None):
        self.target = target
        self.params = params
        self.directory = params["path"]
        now = now or utcnow()
        self.now_epoch = (now - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds()
        self.name = backup_name(params["name"], now)
        atomic_file.check_writable_dir(os.path.join(self.directory, "x"))
        with translate_errors(target.description):
            self.nodes = target.primaries()
            self.node_names = [node_label(target, n) for n in self.nodes]
        cluster = target.mode == "cluster"
        self.bases = [file_base(self.name, n if cluster else None) for n in self.node_names]
        sets, _unmanaged = list_backups(self.directory)
        for entry in sets:
            entry.check()
        self.sets = sets
        existing = next((s for s in sets if s.name == self.name), None)
        self.existing = existing
        wanted_files = set(b + ".rdb" for b in self.bases)
        self.create = not (existing and existing.verified
                           and wanted_files <= set(os.path.basename(f.path) for f in existing.files))
        self.replaced = existing.problems() if existing and self.create else []
        self.prune = None
        if params.get("prune", True):
            self.prune = PrunePlan(self.directory, params.get("keep_days"), params.get("keep_min"),
                                   self.now_epoch, protect=[self.name], sets=sets)
        self.files = []
        self.warnings = []

    @property
    def changed(self):
        return self.create or bool(self.prune and self.prune.delete)

    def _mode_owner(self):
        mode = atomic_file.parse_mode(self.params.get("file_mode"), 0o600)
        return mode, atomic_file.resolve_owner(self.params.get("owner")), \
            atomic_file.resolve_group(self.params.get("group"))

    def apply(self):
        if self.create:
            self._create()
        if self.prune and self.prune.delete:
            self.prune.apply()

    def _create(self):
        mode, uid, gid = self._mode_owner()
        written = []
        try:
            for node, node_name, base in zip(self.nodes, self.node_names, self.bases):
                self.files.append(self._backup_node(node, node_name, base, mode, uid, gid, written))
        except (RedisOpsError, atomic_file.AtomicFileError):
            for path in written:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            raise

    def _address(self, node, node_name):
        """host, port for the raw replication connection (None, None: the module's host/port/url)."""
        if self.target.mode == "cluster":
            host, _sep, port = node_name.rpartition(":")
            return host, int(port)
        if self.target.mode == "sentinel":
            return node.connection_pool.get_master_address()
        return None, None

    def _backup_node(self, node, node_name, base, mode, uid, gid, written):
        params = self.params

        def new_verifier():
            return rdb.StreamVerifier(params["check_rdb"], params.get("check_rdb_path"))

        with translate_errors(node_name):
            method = resolve_method(params["method"], node)
            manifest = _source(self.target, node, method)
            started = time.time()
            if method == "bgsave":
                verifier = snapshot_bgsave(node, node_name, params["timeout"], new_verifier)
            else:
                host, port = self._address(node, node_name)
                verifier = snapshot_replication(params, host, port, node_name, new_verifier)
        result = verifier.finish()
        data = verifier.data()
        if not result["ok"]:
            raise RedisOpsError("Backup of %s failed verification (%s); it was not kept and no backup file was "
                                "written." % (node_name, result["reason"]))
        path = os.path.join(self.directory, base + ".rdb")
        manifest.update({
            "format": MANIFEST_FORMAT, "name": self.name, "file": base + ".rdb",
            "created_at": iso(started), "created_epoch": int(started),
            "rdb_version": result["rdb_version"], "rdb_redis_version": result["aux"].get("redis-ver"),
            "size": result["size"], "sha256": result["sha256"], "crc64": result["crc64"],
            "keys_in_file": result["keys_in_file"], "checks": result["checks"], "verified": True,
            "files_in_backup": len(self.nodes), "crc64_backend": rdb.CRC64_BACKEND,
        })
        try:
            atomic_file.write_atomic(path, data, mode=mode, uid=uid, gid=gid)
            written.append(path)
            manifest_path = os.path.join(self.directory, base + MANIFEST_SUFFIX)
            atomic_file.write_atomic(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n",
                                     mode=mode, uid=uid, gid=gid)
            written.append(manifest_path)
        except atomic_file.AtomicFileError as exc:
            raise RedisOpsError("Backup of %s could not be written: %s No backup file was left behind."
                                % (node_name, str(exc).replace("; the previous file is unchanged.", ".")))
        manifest["path"] = path
        return manifest

    def result(self):
        out = {"name": self.name, "path": self.directory, "created": self.create,
               "files": self.files or [os.path.join(self.directory, b + ".rdb") for b in self.bases],
               "deleted": self.prune.deleted if self.prune else [],
               "kept": [s.name for s in self.prune.keep] + ([self.name] if self.create else [])
               if self.prune else None}
        if self.replaced:
            out["replaced_invalid"] = self.replaced
        if self.files:
            out["manifests"] = self.files
            out["files"] = [m["path"] for m in self.files]
        return out

    def diff(self):
        before = sorted(s.name for s in self.sets)
        after = sorted(set(before) - set(self.prune.deleted if self.prune else []) | {self.name})
        return {"before": {"backups": before}, "after": {"backups": after}}


def prune_plan(params):
    atomic_file.check_writable_dir(os.path.join(params["path"], "x"))
    return PrunePlan(params["path"], params.get("keep_days"), params.get("keep_min"))


# -- redis.conf --------------------------------------------------------------------------------

class RedisConfig:
    """The directives of a redis.conf (includes followed, the last occurrence wins)."""

    def __init__(self, path):
        self.path = path
        self.values = {}
        try:
            with open(path) as handle:
                self.text = handle.read()
        except (IOError, OSError) as exc:
            raise RedisOpsError("Cannot read the Redis config %s: %s." % (path, exc.strerror or exc))
        self._parse(self.text, os.path.dirname(os.path.abspath(path)), 0)

    def _parse(self, text, base, depth):
        for line in text.splitlines():
            fields = line.strip().split(None, 1)
            if not fields or fields[0].startswith("#"):
                continue
            key = fields[0].lower()
            value = fields[1].strip() if len(fields) > 1 else ""
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            if key == "include" and depth < 5:
                for included in sorted(glob.glob(os.path.join(base, value))):
                    try:
                        with open(included) as handle:
                            self._parse(handle.read(), base, depth + 1)
                    except (IOError, OSError):
                        pass
                continue
            self.values[key] = value

    def get(self, key, default=None):
        return self.values.get(key, default)

    @property
    def appendonly(self):
        return self.get("appendonly", "no").lower() == "yes"

    @property
    def aof_disabled_for_restore(self):
        return AOF_MARKER in self.text

    def directory(self):
        value = self.get("dir", ".")
        if not os.path.isabs(value):
            value = os.path.join(os.path.dirname(os.path.abspath(self.path)), value)
        return value

    def text_with_aof_disabled(self):
        return self.text.rstrip("\n") + "\n" + AOF_MARKER + "\nappendonly no\n"

    def text_with_aof_enabled(self):
        """The config without our restore override; 'appendonly yes' added if still needed."""
        lines = self.text.splitlines()
        out = []
        skip_next = False
        for line in lines:
            if line.strip() == AOF_MARKER:
                skip_next = True
                continue
            if skip_next and line.strip().lower().startswith("appendonly"):
                skip_next = False
                continue
            skip_next = False
            out.append(line)
        text = "\n".join(out) + "\n"
        probe = RedisConfig.__new__(RedisConfig)
        probe.path, probe.values, probe.text = self.path, {}, text
        probe._parse(text, os.path.dirname(os.path.abspath(self.path)), 0)  # pylint: disable=protected-access
        if not probe.appendonly:
            text += "appendonly yes\n"
        return text


def _write_config(path, text):
    info = os.stat(path)
    atomic_file.write_atomic(path, text, mode=info.st_mode & 0o7777, uid=info.st_uid, gid=info.st_gid)


# -- restore -----------------------------------------------------------------------------------

def _running(config, host="127.0.0.1"):
    """A reason string if the Redis of this config seems to be running, else None."""
    pidfile = config.get("pidfile")
    if pidfile and os.path.isfile(pidfile):
        try:
            with open(pidfile) as handle:
                pid = int(handle.read().strip() or 0)
            if pid > 0:
                os.kill(pid, 0)
                return "process %d from pidfile %s is alive" % (pid, pidfile)
        except (ValueError, OSError):
            pass
    for key in ("port", "tls-port"):
        port = config.get(key)
        if port and port.isdigit() and int(port) > 0:
            bind = (config.get("bind") or host).split()[0].lstrip("-")
            bind = host if bind in ("*", "0.0.0.0", "::", "::*") else bind
            try:
                with socket.create_connection((bind, int(port)), timeout=1.0):
                    return "something is listening on %s:%s" % (bind, port)
            except OSError:
                pass
    return None


def select_backup(directory, backup, node):
    """(BackupFile or None, path) of the chosen backup: a path, a name, or the newest verified."""
    if backup and (os.sep in backup or backup.endswith(".rdb")):
        path = backup if os.path.isabs(backup) else os.path.join(directory, backup)
        manifest_path = path[:-4] + MANIFEST_SUFFIX if path.endswith(".rdb") else None
        if manifest_path and os.path.isfile(manifest_path):
            with open(manifest_path) as handle:
                return BackupFile(os.path.dirname(path), manifest_path, json.load(handle)), path
        if not os.path.isfile(path):
            raise RedisOpsError("Backup file %s does not exist; the current data is untouched." % path)
        return None, path
    sets, _unmanaged = list_backups(directory)
    if backup:
        chosen = next((s for s in sets if s.name == backup), None)
        if chosen is None:
            raise RedisOpsError("No backup named %s in %s (have: %s); the current data is untouched."
                                % (backup, directory, ", ".join(s.name for s in sets) or "none"))
    else:
        for entry in sets:
            entry.check()
        verified = [s for s in sets if s.verified]
        if not verified:
            raise RedisOpsError("No verified backup in %s to restore; the current data is untouched." % directory)
        chosen = verified[-1]
    files = chosen.files
    if node:
        files = [f for f in files if "%s:%s" % (f.manifest["source"]["host"], f.manifest["source"]["port"]) == node]
    if len(files) != 1:
        raise RedisOpsError("Backup %s has %d files for node %s: set node to one of %s." % (
            chosen.name, len(files), node or "(any)", ", ".join(
                "%s:%s" % (f.manifest["source"]["host"], f.manifest["source"]["port"]) for f in chosen.files)))
    return files[0], files[0].path


class RestorePlan:
    """state=restored: the chosen backup is the dump file of a stopped Redis."""

    def __init__(self, params):
        self.params = params
        self.warnings = []
        if not params.get("config_file") and not params.get("dump_path"):
            raise RedisOpsError("state=restored needs config_file (the redis.conf of the stopped Redis) "
                                "or dump_path.")
        self.config = RedisConfig(params["config_file"]) if params.get("config_file") else None
        if self.config is not None:
            running = _running(self.config)
            if running:
                raise RedisOpsError("Redis of %s looks running (%s): stop it first - a running Redis "
                                    "overwrites its dump on shutdown; nothing was changed."
                                    % (params["config_file"], running))
        self.dump_path = params.get("dump_path") or os.path.join(
            self.config.directory(), self.config.get("dbfilename", "dump.rdb"))
        self.entry, self.source = select_backup(params["path"], params.get("backup"), params.get("node"))
        try:
            self.data = rdb.read_file(self.source)
        except rdb.RdbError as exc:
            raise RedisOpsError("Backup %s cannot be read (%s); it was not restored and the current data is "
                                "untouched." % (self.source, exc))
        self.verification = rdb.verify(self.data, params["check_rdb"], params.get("check_rdb_path"))
        reason = self.verification["reason"]
        if self.verification["ok"] and self.entry is not None and \
                self.entry.manifest.get("sha256") != self.verification["sha256"]:
            reason = "sha256 differs from its manifest"
        if reason:
            raise RedisOpsError("Backup %s failed verification (%s); it was not restored and the current data "
                                "is untouched." % (self.source, reason))
        atomic_file.check_writable_dir(self.dump_path)
        self.current_sha = _sha256_file(self.dump_path) if os.path.isfile(self.dump_path) else None
        self.write_dump = self.current_sha != self.verification["sha256"]
        self._aof()
        self.previous_dump = None
        self.moved_aof = []

    def _aof(self):
        config = self.config
        handling = self.params.get("aof_handling", "fail")
        self.aof_enabled = bool(config and config.appendonly)
        self.aof_pending = bool(config and config.aof_disabled_for_restore)
        self.disable_aof = False
        self.aof_paths = []
        if self.aof_enabled:
            if handling == "fail":
                raise RedisOpsError(
                    "AOF is enabled in %s: Redis would load its AOF and ignore the restored dump. Set "
                    "aof_handling=disable_then_rewrite (then state=aof_enabled after start) or "
                    "aof_handling=ignore; nothing was changed." % config.path)
            if handling == "ignore":
                self.warnings.append("AOF is enabled in %s: Redis will load the AOF, not the restored dump "
                                     "(aof_handling=ignore)." % config.path)
            else:
                self.disable_aof = True
        if self.disable_aof or self.aof_pending:
            directory = config.directory()
            for name in (config.get("appenddirname", "appendonlydir"),
                         config.get("appendfilename", "appendonly.aof")):
                path = os.path.join(directory, name)
                if os.path.exists(path):
                    self.aof_paths.append(path)

    @property
    def changed(self):
        return self.write_dump or self.disable_aof or bool(self.aof_paths)

    def apply(self):
        mode, uid, gid = self._attributes()
        try:
            if self.write_dump:
                self.previous_dump = atomic_file.write_atomic(self.dump_path, self.data, mode=mode, uid=uid,
                                                              gid=gid, backup=self.current_sha is not None)
            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            for path in self.aof_paths:
                moved = "%s.before-restore-%s" % (path, stamp)
                os.rename(path, moved)
                self.moved_aof.append(moved)
            if self.disable_aof:
                _write_config(self.config.path, self.config.text_with_aof_disabled())
        except (atomic_file.AtomicFileError, OSError) as exc:
            raise RedisOpsError("Restore to %s failed: %s" % (self.dump_path, exc))

    def _attributes(self):
        params = self.params
        directory = os.path.dirname(os.path.abspath(self.dump_path))
        ref = os.stat(self.dump_path) if os.path.exists(self.dump_path) else None
        dir_info = os.stat(directory)
        mode = atomic_file.parse_mode(params.get("file_mode"), (ref.st_mode & 0o7777) if ref else 0o640)
        uid = atomic_file.resolve_owner(params.get("owner"))
        gid = atomic_file.resolve_group(params.get("group"))
        if uid == -1:
            uid = ref.st_uid if ref else dir_info.st_uid
        if gid == -1:
            gid = ref.st_gid if ref else dir_info.st_gid
        return mode, uid, gid

    def next_steps(self):
        if self.disable_aof or self.aof_pending:
            return ["start Redis: it loads %s (appendonly is off for this start)" % self.dump_path,
                    "run redis_backup with state=aof_enabled and config_file=%s: it sets appendonly yes "
                    "(Redis rewrites the AOF from the loaded data) and restores appendonly yes in the config"
                    % self.config.path]
        if self.aof_enabled:
            return ["start Redis: with AOF on it loads the AOF, NOT %s (aof_handling=ignore)" % self.dump_path]
        return ["start Redis: it loads %s" % self.dump_path]

    def result(self):
        return {"backup": self.source, "dump_path": self.dump_path, "sha256": self.verification["sha256"],
                "checks": self.verification["checks"], "keys_in_file": self.verification["keys_in_file"],
                "previous_dump": self.previous_dump, "aof_enabled": self.aof_enabled,
                "aof_disabled_for_restore": self.disable_aof or self.aof_pending,
                "aof_moved": self.moved_aof or self.aof_paths, "next_steps": self.next_steps()}

    def diff(self):
        return {"before": {"dump_sha256": self.current_sha,
                           "appendonly": "yes" if self.aof_enabled and not self.aof_pending else "no",
                           "aof_files": self.aof_paths},
                "after": {"dump_sha256": self.verification["sha256"],
                          "appendonly": "no (until state=aof_enabled)" if self.disable_aof or self.aof_pending
                          else ("yes" if self.aof_enabled else "no"),
                          "aof_files": []}}


class AofEnablePlan:
    """state=aof_enabled (step two of a restore with AOF): AOF on at runtime and in the config."""

    def __init__(self, target, params):
        if not params.get("config_file"):
            raise RedisOpsError("state=aof_enabled needs config_file (the redis.conf to set appendonly yes in).")
        self.target = target
        self.params = params
        self.config = RedisConfig(params["config_file"])
        with translate_errors(target.description):
            self.node = target.client
            self.runtime = _config_get(self.node, "appendonly") == "yes"
        self.new_text = self.config.text_with_aof_enabled()
        self.config_change = self.new_text != self.config.text
        self.rewrite_status = None

    @property
    def changed(self):
        return not self.runtime or self.config_change

    def apply(self):
        with translate_errors(self.target.description):
            if not self.runtime:
                self.node.config_set("appendonly", "yes")
            info = _wait_persistence(
                self.node, lambda i: i.get("aof_enabled") and not i.get("aof_rewrite_in_progress")
                and not i.get("aof_rewrite_scheduled"), self.params["timeout"], "the AOF rewrite")
            self.rewrite_status = info.get("aof_last_bgrewrite_status")
            if self.rewrite_status != "ok":
                raise RedisOpsError("The AOF rewrite on %s failed (aof_last_bgrewrite_status:%s): check its log; "
                                    "the config %s was not changed." % (self.target.description, self.rewrite_status,
                                                                        self.config.path))
        if self.config_change:
            try:
                _write_config(self.config.path, self.new_text)
            except atomic_file.AtomicFileError as exc:
                raise RedisOpsError(str(exc))

    def result(self):
        return {"config_file": self.config.path, "aof_rewrite_status": self.rewrite_status,
                "next_steps": [] if not self.changed else ["none: AOF is on and rewritten from the loaded data"]}

    def diff(self):
        return {"before": {"appendonly_runtime": "yes" if self.runtime else "no", "config": self.config.text},
                "after": {"appendonly_runtime": "yes", "config": self.new_text}}


# -- info --------------------------------------------------------------------------------------

def describe_sets(directory, name=None, reverify=False, check_rdb="auto", check_rdb_path=None, now_epoch=None):
    now_epoch = time.time() if now_epoch is None else now_epoch
    sets, unmanaged = list_backups(directory)
    out = []
    for entry in sets:
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
    latest = [s["name"] for s in out if s["verified"]]
    return {"backups": out, "unmanaged": unmanaged, "latest_verified": latest[-1] if latest else None}
