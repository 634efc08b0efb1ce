# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup retention: which of our backups to delete (the runbook's ``find -mtime +7 -delete``).

Only backups of the catalog are ever considered (``backup_catalog.parse_manifest`` decides what is
ours); foreign manifests and unmanaged files are reported and never touched.  A backup whose age
cannot be known is never expired.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.module_utils.backup_catalog import list_backups
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import RedisOpsError

DAY = 86400


def _expired(entry, keep_days, now_epoch):
    if keep_days is None:
        return False
    try:
        epoch = entry.created_epoch
    except (KeyError, TypeError, ValueError):
        return False
    if not isinstance(epoch, (int, float)) or isinstance(epoch, bool):
        return False  # an unknown age never means expired
    return now_epoch - epoch > keep_days * DAY


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
    delete = [s for s in sets if s.name not in keep_names and _expired(s, keep_days, now_epoch)]
    keep = [s for s in sets if s not in delete]
    return keep, delete


class PrunePlan:
    def __init__(self, directory, keep_days, keep_min, now_epoch=None, protect=(), catalog=None):
        self.directory = directory
        if catalog is None:
            catalog = list_backups(directory)
            for entry in catalog.sets:
                entry.check()
        self.catalog = catalog
        self.sets = catalog.sets
        now_epoch = time.time() if now_epoch is None else now_epoch
        has_verified = any(s.verified for s in self.sets) or bool(protect)
        # pruning needs a verified backup to exist: never prune down to nothing good
        self.keep, self.delete = retention(self.sets, keep_days, keep_min, now_epoch, protect) \
            if has_verified else (list(self.sets), [])
        self.deleted = [s.name for s in self.delete]

    @property
    def changed(self):
        return bool(self.delete)

    def result(self):
        return {"path": self.directory, "deleted": self.deleted, "kept": [s.name for s in self.keep],
                "foreign": self.catalog.foreign}

    def diff(self):
        return {"before": {"backups": [s.name for s in self.sets]}, "after": {"backups": [s.name for s in self.keep]}}

    def apply(self):
        for entry in self.delete:
            for item in entry.files:
                # names only, joined to the directory: parse_manifest made sure they are plain names there
                for name in (os.path.basename(item.path), os.path.basename(item.manifest_path)):
                    try:
                        atomic_file.remove_file(os.path.join(self.directory, name))
                    except atomic_file.AtomicFileError as exc:
                        raise RedisOpsError("Pruning backup %s failed: %s" % (entry.name, exc))


def prune_plan(params):
    atomic_file.check_writable_dir(os.path.join(params["path"], "x"))
    return PrunePlan(params["path"], params.get("keep_days"), params.get("keep_min"))
