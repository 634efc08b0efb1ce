# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""state=restored and state=aof_enabled: the runbook's Recovery Procedure step 3 (the backup becomes the
dump of a stopped Redis) and, with AOF, step two after the start (AOF rewritten from the loaded data).

The restore-safety policy lives here: a backup is verified again before it is placed, a running
Redis is never written under, an enabled AOF is handled explicitly.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket

from ansible.module_utils.six.moves.urllib.parse import urlparse

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.module_utils import rdb
from ansible_collections.apigw.ops.plugins.module_utils.backup_catalog import (
    MANIFEST_SUFFIX, BackupFile, list_backups, parse_manifest, sha256_file, utcnow)
from ansible_collections.apigw.ops.plugins.module_utils.backup_snapshot import config_get, wait_persistence
from ansible_collections.apigw.ops.plugins.module_utils.redis_conf import RedisConfig, mask_config, write_config
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError, translate_errors


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


def _secrets(params):
    """Values of the module's secret options: masked wherever they appear in a config text."""
    found = [params.get("password")]
    if params.get("url"):
        try:
            found.append(urlparse(params["url"]).password)
        except ValueError:
            pass
    return found


def _node_of(item):
    source = item.manifest.get("source") if isinstance(item.manifest.get("source"), dict) else {}
    return "%s:%s" % (source.get("host"), source.get("port"))


def select_backup(directory, backup, node):
    """(BackupFile or None, path) of the chosen backup: a path, a name, or the newest verified."""
    if backup and (os.sep in backup or backup.endswith(".rdb")):
        path = backup if os.path.isabs(backup) else os.path.join(directory, backup)
        manifest_path = path[:-4] + MANIFEST_SUFFIX if path.endswith(".rdb") else None
        if manifest_path and os.path.lexists(manifest_path):
            folder, manifest_name = os.path.split(manifest_path)
            manifest, reason = parse_manifest(folder, manifest_name)
            if manifest is None:
                raise RedisOpsError("Manifest %s is not a valid apigw.ops backup manifest (%s); nothing was "
                                    "restored and the current data is untouched." % (manifest_path, reason))
            return BackupFile(folder, manifest_name, manifest), path
        if not os.path.isfile(path):
            raise RedisOpsError("Backup file %s does not exist; the current data is untouched." % path)
        return None, path
    catalog = list_backups(directory)
    sets = catalog.sets
    if backup:
        chosen = next((s for s in sets if s.name == backup), None)
        if chosen is None:
            broken = next((f for f in catalog.foreign if f["manifest"] == backup + MANIFEST_SUFFIX), None)
            if broken:
                raise RedisOpsError("Manifest %s is not a valid apigw.ops backup manifest (%s); nothing was "
                                    "restored and the current data is untouched."
                                    % (os.path.join(directory, broken["manifest"]), broken["reason"]))
            latest = catalog.latest_verified()
            raise RedisOpsError("No backup named %s in %s (latest verified there: %s); the current data is "
                                "untouched." % (backup, directory, latest.name if latest else "none"))
    else:
        chosen = catalog.latest_verified()
        if chosen is None:
            raise RedisOpsError("No verified backup in %s to restore; the current data is untouched." % directory)
    files = chosen.files
    if node:
        files = [f for f in files if _node_of(f) == node]
    if len(files) != 1:
        raise RedisOpsError("Backup %s has %d files for node %s: set node to one of %s." % (
            chosen.name, len(files), node or "(any)", ", ".join(_node_of(f) for f in chosen.files)))
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
        self.running = _running(self.config) if self.config is not None else None
        if self.running:
            if params.get("if_running", "fail") != "plan":
                raise RedisOpsError(self._running_message())
            # the Recovery Procedure in check mode: step 2 would have stopped it; apply() still refuses
            self.warnings.append("Redis of %s is running (%s): the restore is planned as if it were stopped "
                                 "(if_running=plan); writing it would be refused."
                                 % (params["config_file"], self.running))
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
        self.current_sha = sha256_file(self.dump_path) if os.path.isfile(self.dump_path) else None
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

    def _running_message(self):
        return ("Redis of %s looks running (%s): stop it first - a running Redis overwrites its dump on "
                "shutdown; nothing was changed." % (self.params["config_file"], self.running))

    def apply(self):
        self.running = _running(self.config) if self.config is not None else None
        if self.running:  # checked again right before writing, whatever if_running says
            raise RedisOpsError(self._running_message())
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
                write_config(self.config.path, self.config.text_with_aof_disabled())
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
                "aof_moved": self.moved_aof or self.aof_paths, "next_steps": self.next_steps(),
                "redis_running": self.running}

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
            self.runtime = config_get(self.node, "appendonly") == "yes"
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
            info = wait_persistence(
                self.node, lambda i: i.get("aof_enabled") and not i.get("aof_rewrite_in_progress")
                and not i.get("aof_rewrite_scheduled"), self.params["timeout"], "the AOF rewrite")
            self.rewrite_status = info.get("aof_last_bgrewrite_status")
            if self.rewrite_status != "ok":
                raise RedisOpsError("The AOF rewrite on %s failed (aof_last_bgrewrite_status:%s): check its log; "
                                    "the config %s was not changed." % (self.target.description, self.rewrite_status,
                                                                        self.config.path))
        if self.config_change:
            try:
                write_config(self.config.path, self.new_text)
            except atomic_file.AtomicFileError as exc:
                raise RedisOpsError(str(exc))

    def result(self):
        return {"config_file": self.config.path, "aof_rewrite_status": self.rewrite_status,
                "next_steps": [] if not self.changed else ["none: AOF is on and rewritten from the loaded data"]}

    def diff(self):
        secrets = _secrets(self.params)
        return {"before": {"appendonly_runtime": "yes" if self.runtime else "no",
                           "config": mask_config(self.config.text, secrets)},
                "after": {"appendonly_runtime": "yes", "config": mask_config(self.new_text, secrets)}}
