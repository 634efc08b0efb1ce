#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: redis_backup_info
short_description: List Redis backups with their manifest, age and verification result
version_added: 0.1.0
description:
  - Lists the backups that M(apigw.ops.redis_backup) wrote in a directory - one entry per backup (one file per
    primary for a cluster) with the manifest fields, the age and whether it is verified.
  - By default a backup counts as verified when its manifest says so and the file's size and SHA-256 still
    match it. With O(reverify=true) every file is re-read and re-checked (RDB magic and version, CRC64,
    C(redis-check-rdb) when installed) - the runbook's "Verify backup" step.
  - C(.rdb) files without a manifest are listed as RV(unmanaged).
  - Reads files only; needs no connection to Redis. The connection options are accepted (and not used) so
    that C(module_defaults) for C(group/apigw.ops.gateway) applies to this module too.
author:
  - apigw.ops maintainers (@apigw)
attributes:
  check_mode:
    support: full
    description: The module only reads files; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  idempotent:
    support: full
    description: Only reads; C(changed) is always V(false).
extends_documentation_fragment:
  - apigw.ops.redis_connection
options:
  path:
    description:
      - The backup directory.
    type: path
    required: true
  name:
    description:
      - Only the backup of this name.
    type: str
  reverify:
    description:
      - Re-read every file and run the full verification instead of comparing size and SHA-256 with the manifest.
    type: bool
    default: false
  check_rdb:
    description:
      - With O(reverify=true), whether to run C(redis-check-rdb) too (V(auto) - when installed).
    type: str
    choices: [auto, always, never]
    default: auto
  check_rdb_path:
    description:
      - Path of C(redis-check-rdb) when it is not on E(PATH).
    type: path
requirements:
  - optional - crcmod with its C extension for a fast CRC64 when O(reverify=true)
seealso:
  - module: apigw.ops.redis_backup
"""

EXAMPLES = r"""
- name: Verify every backup (the runbook's "Verify backup")
  apigw.ops.redis_backup_info:
    path: /backup
    reverify: true
  register: backups

- name: Fail when the newest backup is older than a day
  ansible.builtin.assert:
    that:
      - backups.latest_verified is not none
      - (backups.backups | selectattr('verified') | last).age_days < 1
"""

RETURN = r"""
backups:
  description: The backups, oldest first.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Backup name.
      type: str
      sample: dump-20260115
    created_at:
      description: When the snapshot was taken (UTC, ISO 8601).
      type: str
      sample: "2026-01-15T02:00:01Z"
    age_seconds:
      description: Age in seconds.
      type: int
    age_days:
      description: Age in days (2 decimals).
      type: float
    verified:
      description: Whether every file of the backup passed its checks (and none is missing).
      type: bool
    problems:
      description: Why it is not verified (empty when it is).
      type: list
      elements: str
    files:
      description: >-
        One entry per RDB file - the manifest fields (file, size, sha256, crc64, method, source, keys,
        keys_in_file, rdb_version, checks, slots, node_id ...) plus path, manifest_path and verification
        (ok, problem, checks).
      type: list
      elements: dict
foreign:
  description:
    - Manifests in O(path) that are not backups of this collection, each with C(manifest) (its file name) and
      C(reason); the retention never deletes them or the files they name.
  returned: always
  type: list
  elements: dict
  sample: [{manifest: exports.manifest.json, reason: "no apigw.ops.redis_backup/2 format marker"}]
unmanaged:
  description: C(.rdb) files in the directory that have no manifest (never touched by the retention).
  returned: always
  type: list
  elements: str
latest_verified:
  description: Name of the newest verified backup in O(path) (whatever O(name) selects), or null.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.backup_catalog import describe_sets
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import redis_connection_argument_spec


def main():
    spec = redis_connection_argument_spec()  # accepted for module_defaults of the group; not used
    spec.update(
        path=dict(type="path", required=True),
        name=dict(type="str"),
        reverify=dict(type="bool", default=False),
        check_rdb=dict(type="str", default="auto", choices=["auto", "always", "never"]),
        check_rdb_path=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    params = module.params
    if not os.path.isdir(params["path"]):
        module.fail_json(msg="Backup directory %s does not exist (or is not a directory)." % params["path"])
    result = describe_sets(params["path"], params["name"], params["reverify"], params["check_rdb"],
                           params["check_rdb_path"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
