#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_backup
short_description: Create, verify, prune and restore Redis RDB backups with a manifest
version_added: 0.1.0
description:
  - Replaces the runbook's C(redis-cli --rdb), C(save) + C(cp), C(find -mtime +7 -delete) and
    C(cp) over C(dump.rdb).
  - O(state=present) takes a point-in-time RDB, verifies it (RDB magic and version, the CRC64 at the
    end of the file, and C(redis-check-rdb) when installed), writes it atomically into O(path) with a
    JSON manifest beside it, then prunes old backups (O(keep_days), never below O(keep_min) verified
    backups). A backup that fails verification is never written and the task fails.
  - O(state=pruned) only prunes.
  - O(state=restored) places a verified backup as the dump file of a B(stopped) Redis, keeping a copy of
    the current dump, and handles an enabled AOF (see O(aof_handling)).
  - O(state=aof_enabled) is step two of a restore with AOF, run after Redis has started and loaded
    the restored dump - it turns AOF on (Redis rewrites the AOF from the loaded data) and restores
    C(appendonly yes) in the config file.
  - In O(mode=cluster) a backup has one file per primary; each manifest records the slot ranges of
    its primary.
author:
  - apigw.ops maintainers (@apigw)
attributes:
  check_mode:
    support: full
    description: Builds the same read-only plan as a real run (existing backups checked, retention computed,
      restore file verified, config read) and stops before taking the snapshot or writing, so C(changed)
      and RV(deleted) are predicted exactly.
  diff_mode:
    support: full
    description: Shows the backup names before and after, or the dump checksum and C(appendonly) before
      and after a restore, or the config file before and after O(state=aof_enabled).
  idempotent:
    support: full
    description: O(name) defaults to C(dump-%Y%m%d), so a second run on the same day finds the verified backup
      of that name and reports no change (the runbook's daily backup); a restore whose dump already has the
      backup's checksum, and an AOF already on, are not changed.
extends_documentation_fragment:
  - apigw.ops.redis_connection
options:
  state:
    description:
      - V(present) - a verified backup named O(name) exists in O(path) (created if missing or invalid);
        then old backups are pruned unless O(prune=false).
      - V(pruned) - only apply the retention (O(keep_days), O(keep_min)); nothing is pruned unless a
        verified backup exists.
      - V(restored) - the chosen backup is the dump file of the stopped Redis of O(config_file) (or O(dump_path)).
        Needs no connection to Redis.
      - V(aof_enabled) - after a restore with O(aof_handling=disable_then_rewrite) and a start of Redis, turn
        AOF on at runtime (C(CONFIG SET appendonly yes) makes Redis rewrite the AOF from the loaded data;
        the module waits for the rewrite) and in O(config_file).
    type: str
    choices: [present, pruned, restored, aof_enabled]
    default: present
  path:
    description:
      - The backup directory. It must exist and be writable (for O(state=present) and O(state=pruned)).
    type: path
    required: true
  name:
    description:
      - Name of the backup to create; C(strftime) fields are expanded in UTC, so the default gives one
        backup a day like the runbook's C(dump-$(date +%Y%m%d).rdb).
      - "Letters, digits and C(. _ @ + : -); no slash."
    type: str
    default: dump-%Y%m%d
  method:
    description:
      - How the snapshot is taken.
      - V(bgsave) - C(BGSAVE), wait on C(rdb_bgsave_in_progress), fail on C(rdb_last_bgsave_status:err),
        then copy the server's C(dir)/C(dbfilename). The task must run on the Redis host (the data directory
        must be readable). The file's creation time is checked against the server clock, so a file of another
        host with the same path is never taken.
      - V(replication) - read a point-in-time RDB over the replication protocol (C(SYNC)), as
        C(redis-cli --rdb) does. Works from any host; the user needs the C(sync) permission. With the Redis 7
        default C(repl-diskless-sync yes) the server waits C(repl-diskless-sync-delay) (5 s) before it streams.
      - V(auto) - V(bgsave) when the server's data directory is readable on this host, else V(replication).
    type: str
    choices: [auto, bgsave, replication]
    default: auto
  keep_days:
    description:
      - Backups older than this many days are deleted, except the O(keep_min) newest verified ones
        and the newest verified one in every case. V(null) disables age-based deletion.
      - Only backups with a manifest are considered; other files in O(path) are never touched.
    type: int
    default: 7
  keep_min:
    description:
      - Never keep fewer than this many verified backups, whatever their age. At least 1 is always kept.
    type: int
    default: 3
  prune:
    description:
      - With O(state=present), apply the retention after the backup is verified.
    type: bool
    default: true
  check_rdb:
    description:
      - Whether to also run C(redis-check-rdb) on every file verified.
      - V(auto) runs it when installed; V(always) fails when it is missing; V(never) skips it.
      - It runs concurrently with the CRC64 check, fed through a pipe.
    type: str
    choices: [auto, always, never]
    default: auto
  check_rdb_path:
    description:
      - Path of C(redis-check-rdb) when it is not on E(PATH).
    type: path
  timeout:
    description:
      - Seconds to wait for a C(BGSAVE) or, with O(state=aof_enabled), the AOF rewrite.
    type: int
    default: 3600
  file_mode:
    description:
      - File mode of the files written - backups and manifests (default V('0600')) or, with
        O(state=restored), the dump file (default - that of the current dump, else V('0640')).
    type: raw
  owner:
    description:
      - Owner of the files written. With O(state=restored) the default is the owner of the current dump file,
        else of its directory (the Redis user).
    type: str
  group:
    description:
      - Group of the files written (defaults as for O(owner)).
    type: str
  backup:
    description:
      - With O(state=restored), the backup to restore - a name (as in O(name), already expanded) or the path
        of an C(.rdb) file. Default - the newest verified backup in O(path).
    type: str
  node:
    description:
      - With O(state=restored) of a cluster backup, which primary's file to restore, as C(host:port)
        as recorded in the manifest (the C(backups) returned by M(apigw.ops.redis_backup_info) list them).
    type: str
  config_file:
    description:
      - The C(redis.conf) of the target Redis. With O(state=restored) it gives C(dir), C(dbfilename), whether AOF
        is on, and the port/pidfile used to refuse a restore while Redis runs. Required for O(state=aof_enabled).
    type: path
  dump_path:
    description:
      - With O(state=restored), the dump file to write instead of C(dir)/C(dbfilename) of O(config_file).
    type: path
  aof_handling:
    description:
      - With O(state=restored), what to do when O(config_file) has C(appendonly yes) - Redis would then load its AOF
        and ignore the restored dump (or start empty).
      - V(fail) - refuse; nothing is changed.
      - V(disable_then_rewrite) - set C(appendonly no) in O(config_file) (an override block at its end) and move
        the AOF directory/file aside (C(<name>.before-restore-<time>)), so the next start loads the dump. Then
        start Redis and run O(state=aof_enabled).
      - V(ignore) - place the dump anyway, with a warning.
    type: str
    choices: [fail, disable_then_rewrite, ignore]
    default: fail
  if_running:
    description:
      - With O(state=restored), what to do when the Redis of O(config_file) looks running (its pidfile's process is
        alive or something listens on its port).
      - V(fail) - refuse; nothing is changed.
      - V(plan) - build the plan anyway (the backup is found and verified, the dump and AOF changes are
        predicted) with a warning, for a check-mode run of the whole Recovery Procedure, in which the step that
        stops Redis did not stop it. Writing is refused while Redis runs whatever this option says.
    type: str
    choices: [fail, plan]
    default: fail
requirements:
  - redis (redis-py) >= 4.2 on the host that runs the module
  - optional - redis-check-rdb (comes with redis-server / redis-tools); when it runs it checks the CRC64 itself
    and counts the keys, so no CRC is computed in Python
  - optional - crcmod with its C extension (python3-crcmod, or C(pip install crcmod) where a C compiler exists)
    for a fast CRC64 without redis-check-rdb; without both a pure-Python CRC64 is used (about 4 MB/s)
notes:
  - Files are written with apigw.ops' atomic writer (temporary file in the same directory, mode and owner set
    before the data, fsync, rename); a failure leaves no partial file. The RDB is held in memory while it is
    verified, so the host needs free memory of about the size of the RDB.
  - Manifest (C(<file>.manifest.json)) fields - format (C(apigw.ops.redis_backup/2)), name, file, created_at,
    created_epoch, source (host, port,
    redis_version, run_id, role, mode), method, rdb_version, rdb_redis_version, size, sha256, crc64, keys (per
    database from C(INFO keyspace) at backup time), keys_in_file (from redis-check-rdb), checks, verified,
    files_in_backup, crc64_backend, node_id and slots (cluster).
  - A manifest counts as a backup only if it carries that format marker, its name is a backup name, its file is
    C(<name>.rdb) or C(<name>.<node>.rdb) - a plain file in O(path) (no symlink, nothing outside O(path)), it is
    itself named after that file, and its created_epoch is an integer. Anything else is reported in RV(foreign)
    and never deleted, overwritten or restored by name.
  - The diff of O(state=aof_enabled) shows C(redis.conf) with every secret masked (requirepass, masterauth,
    masteruser, C(user) ACL passwords and hashes, tls-key-file-pass, tls-client-key-file-pass, sentinel auth-pass,
    and any text equal to O(password)).
  - An existing backup counts as verified when its manifest says so and the file's size and sha256 match it;
    M(apigw.ops.redis_backup_info) with O(apigw.ops.redis_backup_info#module:reverify=true) re-runs the full checks.
seealso:
  - module: apigw.ops.redis_backup_info
"""

EXAMPLES = r"""
- name: Daily backup (the runbook's cron job), keep 7 days but never fewer than 3 good backups
  apigw.ops.redis_backup:
    host: 127.0.0.1
    password: "{{ redis_password }}"
    path: /backup

- name: Manual backup before maintenance, from any host, over the replication protocol
  apigw.ops.redis_backup:
    url: "rediss://10.0.0.5:6380/0"
    password: "{{ redis_password }}"
    path: /backup
    name: pre-maintenance-%Y%m%d-%H%M
    method: replication
    prune: false

- name: Backup every primary of a cluster
  apigw.ops.redis_backup:
    mode: cluster
    host: 10.0.0.11
    port: 7000
    path: /backup/cluster

- name: Restore the newest verified backup into the stopped Redis (step 1; Redis has AOF on)
  apigw.ops.redis_backup:
    state: restored
    path: /backup
    config_file: /etc/redis/redis.conf
    aof_handling: disable_then_rewrite
  register: restore

- name: Start Redis
  ansible.builtin.service:
    name: redis-server
    state: started

- name: Turn AOF back on from the loaded data (step 2)
  apigw.ops.redis_backup:
    state: aof_enabled
    path: /backup
    config_file: /etc/redis/redis.conf
    password: "{{ redis_password }}"
  when: restore.aof_disabled_for_restore
"""

RETURN = r"""
path:
  description: The backup directory.
  returned: state is present or pruned
  type: str
  sample: /backup
name:
  description: Name of the backup created or found (O(state=present)).
  returned: state is present
  type: str
  sample: dump-20260115
created:
  description: Whether a new backup was (or, in check mode, would be) taken.
  returned: state is present
  type: bool
files:
  description: Paths of the RDB files of the backup, one per primary.
  returned: state is present
  type: list
  elements: str
  sample: [/backup/dump-20260115.rdb]
manifests:
  description: The manifests written (each with C(path)); see the notes for the fields.
  returned: when a backup was created
  type: list
  elements: dict
replaced_invalid:
  description: Why an existing backup of the same name was replaced (it failed its checks).
  returned: when an invalid backup of the same name existed
  type: list
  elements: str
deleted:
  description: Names of the backups deleted (or that would be) by the retention.
  returned: state is present or pruned
  type: list
  elements: str
  sample: [dump-20260101]
kept:
  description: Names of the backups kept by the retention (null with O(prune=false)).
  returned: state is present or pruned
  type: list
  elements: str
foreign:
  description:
    - Manifests in O(path) that are not backups of this collection, with the reason (no format marker, a C(file)
      that is not a plain file name of the backup's naming, a symlink, no valid C(created_epoch), not JSON ...).
      They and the files they name are never deleted or overwritten.
  returned: state is present or pruned
  type: list
  elements: dict
  sample: [{manifest: exports.manifest.json, reason: "no apigw.ops.redis_backup/2 format marker"}]
redis_running:
  description: Why the Redis of O(config_file) looks running (null when it does not) - only with O(if_running=plan).
  returned: state is restored
  type: str
backup:
  description: Path of the backup file restored.
  returned: state is restored
  type: str
dump_path:
  description: The dump file written.
  returned: state is restored
  type: str
  sample: /var/lib/redis/dump.rdb
sha256:
  description: SHA-256 of the restored file.
  returned: state is restored
  type: str
checks:
  description: Verification checks run on the restored file and their result (C(ok), C(failed), C(skipped ...)).
  returned: state is restored
  type: dict
  sample: {magic: ok, crc64: ok, redis_check_rdb: ok}
keys_in_file:
  description: Keys counted by redis-check-rdb in the restored file (null when it did not run).
  returned: state is restored
  type: int
previous_dump:
  description: Copy kept of the dump file that was replaced (null when there was none or nothing changed).
  returned: state is restored
  type: str
aof_enabled:
  description: Whether O(config_file) had AOF enabled (before this restore's override).
  returned: state is restored
  type: bool
aof_disabled_for_restore:
  description: Whether the config now carries the restore override C(appendonly no) -
    run O(state=aof_enabled) after start.
  returned: state is restored
  type: bool
aof_moved:
  description: AOF directory/file moved aside (or that would be).
  returned: state is restored
  type: list
  elements: str
next_steps:
  description: What must happen for Redis to serve the restored data.
  returned: state is restored or aof_enabled
  type: list
  elements: str
config_file:
  description: The config file updated.
  returned: state is aof_enabled
  type: str
aof_rewrite_status:
  description: C(aof_last_bgrewrite_status) after the rewrite (null in check mode or without change).
  returned: state is aof_enabled
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.atomic_file import AtomicFileError
from ansible_collections.apigw.ops.plugins.module_utils.backup_plan import CreatePlan
from ansible_collections.apigw.ops.plugins.module_utils.backup_retention import prune_plan
from ansible_collections.apigw.ops.plugins.module_utils.restore_plan import AofEnablePlan, RestorePlan
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError, connect, redis_connection_argument_spec)


def argument_spec():
    spec = redis_connection_argument_spec()
    spec.update(
        state=dict(type="str", default="present", choices=["present", "pruned", "restored", "aof_enabled"]),
        path=dict(type="path", required=True),
        name=dict(type="str", default="dump-%Y%m%d"),
        method=dict(type="str", default="auto", choices=["auto", "bgsave", "replication"]),
        keep_days=dict(type="int", default=7),
        keep_min=dict(type="int", default=3),
        prune=dict(type="bool", default=True),
        check_rdb=dict(type="str", default="auto", choices=["auto", "always", "never"]),
        check_rdb_path=dict(type="path"),
        timeout=dict(type="int", default=3600),
        file_mode=dict(type="raw"),
        owner=dict(type="str"),
        group=dict(type="str"),
        backup=dict(type="str"),
        node=dict(type="str"),
        config_file=dict(type="path"),
        dump_path=dict(type="path"),
        aof_handling=dict(type="str", default="fail", choices=["fail", "disable_then_rewrite", "ignore"]),
        if_running=dict(type="str", default="fail", choices=["fail", "plan"]),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("state", "aof_enabled", ["config_file"])])
    state = module.params["state"]
    keep_days = module.params["keep_days"]
    if (keep_days is not None and keep_days < 0) or module.params["keep_min"] < 1:
        module.fail_json(msg="keep_days must be >= 0 and keep_min >= 1 (the newest verified backup is always kept).")
    target = connect(module) if state in ("present", "aof_enabled") else None
    try:
        if state == "present":
            plan = CreatePlan(target, module.params)              # read-only
        elif state == "pruned":
            plan = prune_plan(module.params)
        elif state == "restored":
            plan = RestorePlan(module.params)
        else:
            plan = AofEnablePlan(target, module.params)
        changed = plan.changed
        if changed and not module.check_mode:
            plan.apply()                                          # the only writes
    except (RedisOpsError, AtomicFileError) as exc:
        module.fail_json(msg=str(exc))
    for warning in getattr(plan, "warnings", []):
        module.warn(warning)
    module.exit_json(changed=changed, diff=plan.diff(), **plan.result())


if __name__ == "__main__":
    main()
