#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_lockout_info
short_description: List the gateway's login lockouts and failed-login counters
version_added: 0.1.0
description:
  - Lists lockouts (C(lockout:{username}:{ip})) and failed-login counters (C(loginfail:{username}:{ip})) with their
    TTLs, for one user name (literal), a user-name glob pattern, and/or one client IP - the runbook's
    C(redis-cli keys "lockout:*username*") without C(KEYS).
  - Keys are found with C(SCAN) on every primary. Nothing is ever written.
author:
  - apigw.ops maintainers (@apigw-ops)
extends_documentation_fragment:
  - apigw.ops.redis_connection
  - apigw.ops.keyspace
  - apigw.ops.key_scan
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: N/A
    description: Changes nothing, so there is nothing to diff.
  idempotent:
    support: full
    description: Never changes anything.
options:
  username:
    description:
      - A user name, used literally (V(al*ce) lists only the user named C(al*ce)). A name with C(:) is refused.
      - Mutually exclusive with O(username_pattern). Without both, every user is listed.
    type: str
  username_pattern:
    description:
      - A Redis glob for user names (C(*), C(?), C([abc])), for example V(*alice*). Read-only, so a pattern is
        allowed here; M(apigw.ops.gateway_lockout) only takes literal names.
    type: str
  ip:
    description:
      - Only keys of this client IP address, in any notation (it is put in the gateway's canonical form).
    type: str
notes:
  - O(max_keys) caps how many keys are read; above it the task fails with a one-line message. O(batch_size) is
    not used.
seealso:
  - module: apigw.ops.gateway_lockout
'''

EXAMPLES = r'''
- name: Is alice locked out, and how many failed logins has she?
  apigw.ops.gateway_lockout_info:
    username: alice
  register: alice

- name: Every lockout from one IP
  apigw.ops.gateway_lockout_info:
    ip: 203.0.113.7

- name: Lockouts of users whose name contains "svc"
  apigw.ops.gateway_lockout_info:
    username_pattern: "*svc*"
'''

RETURN = r'''
locked:
  description: Whether any lockout was found.
  returned: always
  type: bool
  sample: true
lockouts:
  description: Lockouts found, sorted by key.
  returned: always
  type: list
  elements: dict
  contains:
    key:
      description: Redis key.
      type: str
    username:
      description: User name.
      type: str
    ip:
      description: Client IP.
      type: str
    ttl:
      description: Seconds until the lockout ends; V(null) if it never expires.
      type: int
  sample: [{key: "lockout:alice:10.0.0.1", username: alice, ip: 10.0.0.1, ttl: 842}]
failures:
  description: Failed-login counters found, sorted by key; like RV(lockouts) plus C(count).
  returned: always
  type: list
  elements: dict
  sample: [{key: "loginfail:alice:10.0.0.2", username: alice, ip: 10.0.0.2, ttl: 300, count: 3}]
sample:
  description: Up to O(sample_size) of the keys found, sorted.
  returned: always
  type: list
  elements: str
  sample: ["lockout:alice:10.0.0.1"]
scanned:
  description: Keys in the databases scanned (or exact keys looked up).
  returned: always
  type: int
  sample: 1330000
elapsed:
  description: Seconds spent reading Redis.
  returned: always
  type: float
  sample: 0.3
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import ERRORS
from ansible_collections.apigw.ops.plugins.module_utils.key_scan import scan_engine_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import keyspace_argument_spec, keyspace_from_module
from ansible_collections.apigw.ops.plugins.module_utils.lockout import LockoutRequest, lockout_info
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import connect, redis_connection_argument_spec


def argument_spec():
    spec = dict(
        username=dict(type='str'),
        username_pattern=dict(type='str'),
        ip=dict(type='str'),
    )
    spec.update(scan_engine_argument_spec(), **keyspace_argument_spec())
    spec.update(redis_connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[('username', 'username_pattern')])
    try:
        request = LockoutRequest(keyspace_from_module(module), module.params, info=True)
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    target = connect(module)
    try:
        info = lockout_info(request, target)
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **info)


if __name__ == '__main__':
    main()
