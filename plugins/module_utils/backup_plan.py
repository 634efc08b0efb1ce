# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state=present: take a verified backup of every primary, write it with its manifest, then prune.

Plan first (read-only: existing backups checked, retention computed), apply second; check mode
runs the same plan and stops before ``apply``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import time

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.module_utils import rdb
from ansible_collections.apigw.ops.plugins.module_utils.backup_catalog import (
    MANIFEST_FORMAT, MANIFEST_SUFFIX, backup_name, file_base, iso, list_backups, utcnow)
from ansible_collections.apigw.ops.plugins.module_utils.backup_retention import PrunePlan
from ansible_collections.apigw.ops.plugins.module_utils.backup_snapshot import (
    info_section, resolve_method, snapshot_bgsave, snapshot_replication)
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError, translate_errors


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
    server = info_section(node, "server")
    replication = info_section(node, "replication")
    keyspace = info_section(node, "keyspace")
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
        catalog = list_backups(self.directory)
        for entry in catalog.sets:
            entry.check()
        self.catalog = catalog
        self.sets = sets = catalog.sets
        existing = next((s for s in sets if s.name == self.name), None)
        self.existing = existing
        wanted_files = set(b + ".rdb" for b in self.bases)
        self.create = not (existing and existing.verified
                           and wanted_files <= set(os.path.basename(f.path) for f in existing.files))
        self.replaced = existing.problems() if existing and self.create else []
        if self.create:
            self._refuse_foreign(existing)
        self.prune = None
        if params.get("prune", True):
            self.prune = PrunePlan(self.directory, params.get("keep_days"), params.get("keep_min"),
                                   self.now_epoch, protect=[self.name], catalog=catalog)
        self.files = []
        self.warnings = []

    def _refuse_foreign(self, existing):
        """Never overwrite a file we did not write: a foreign manifest or an unmanaged file of the same name."""
        ours = set()
        for item in (existing.files if existing else []):
            ours.update((os.path.basename(item.path), os.path.basename(item.manifest_path)))
        for base in self.bases:
            for file_name in (base + ".rdb", base + MANIFEST_SUFFIX):
                if file_name not in ours and os.path.lexists(os.path.join(self.directory, file_name)):
                    raise RedisOpsError(
                        "Refusing to overwrite %s in %s: it is not a backup of apigw.ops (no valid manifest of ours "
                        "names it); move it away or set another name. Nothing was written."
                        % (file_name, self.directory))

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
            "files_in_backup": len(self.nodes), "crc64_backend": result["crc64_backend"],
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
               if self.prune else None, "foreign": self.catalog.foreign}
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
