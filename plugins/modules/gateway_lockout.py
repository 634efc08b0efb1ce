#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_lockout
short_description: Unlock (verified) or lock a gateway login account in Redis
version_added: 0.1.0
description:
  - Removes the login lockouts of O(username) (runbook "Unlock Account"), from every client IP or from one O(ip),
    together with the user's failed-login counters (C(loginfail:{username}:{ip})), so a stale counter cannot
    re-lock the user on the next typo.
  - "Verifies its own result, like the runbook's C(redis-cli exists ...) (expected: 0) - after unlocking it looks
    again and fails if any lockout key of the user remains. RV(verified) says so."
  - With O(state=present), locks O(username) from O(ip) for O(ttl) seconds.
  - O(username) is always a literal. It is glob-escaped in C(SCAN) patterns and every key found is parsed back and
    compared with it, so unlocking V(al*ce) or V(*) acts on that literal name only, never on V(alice).
author:
  - apigw.ops maintainers (@apigw-ops)
extends_documentation_fragment:
  - apigw.ops.redis_connection
  - apigw.ops.keyspace
  - apigw.ops.key_scan
attributes:
  check_mode:
    support: full
    description: The same read-only plan as a real run; C(changed), RV(lockouts) and RV(failures) are exact.
  diff_mode:
    support: full
    description: Lists the lockout and failure-counter keys (up to O(sample_size) each) before and after; for
      O(state=present), the lockout key and its TTL.
  idempotent:
    support: full
    description: Unlocking an unlocked user, or locking a user already locked (with a TTL), reports
      C(changed=false). An existing lock's TTL is not extended.
options:
  username:
    description:
      - The user name, used literally (glob characters are not patterns).
      - A name with C(:), the key separator, is refused with one line (the reference gateway refuses such names,
        so no lockout can be theirs; see the key contract in docs/gateway-contract.md).
    type: str
    required: true
  ip:
    description:
      - Only the lockout (and failure counter) from this client IP address. Required with O(state=present).
      - Put in the gateway's canonical form first (IPv6 compressed and lower case, V(::ffff:192.0.2.1) as
        C(192.0.2.1)), so V(2001:DB8:0::1) finds C(lockout:alice:2001:db8::1).
    type: str
  state:
    description:
      - V(absent) unlocks; V(present) locks.
    type: str
    choices: [absent, present]
    default: absent
  ttl:
    description:
      - Seconds the lock lasts (O(state=present)); 1 or more.
    type: int
  clear_failures:
    description:
      - With O(state=absent), also delete the user's failed-login counters (from O(ip) only if it is given).
    type: bool
    default: true
seealso:
  - module: apigw.ops.gateway_lockout_info
'''

EXAMPLES = r'''
- name: Unlock alice from every IP, and reset her failed-login counters
  apigw.ops.gateway_lockout:
    username: alice
  register: unlocked

- name: Unlock one IP only, keep the failure counters
  apigw.ops.gateway_lockout:
    username: alice
    ip: 192.168.1.100
    clear_failures: false

- name: Lock bob from 203.0.113.7 for 15 minutes
  apigw.ops.gateway_lockout:
    username: bob
    ip: 203.0.113.7
    state: present
    ttl: 900
'''

RETURN = r'''
username:
  description: The user name acted on.
  returned: always
  type: str
  sample: alice
ip:
  description: The IP acted on, or V(null) for every IP.
  returned: always
  type: str
  sample: 192.168.1.100
matched:
  description: Lockout and failure-counter keys found (O(state=absent)).
  returned: when O(state=absent)
  type: int
  sample: 2
deleted:
  description: Keys deleted; in check mode, keys that would be deleted.
  returned: when O(state=absent)
  type: int
  sample: 2
lockouts:
  description: Lockout keys removed (or to remove), up to O(sample_size).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["lockout:alice:192.168.1.100"]
failures:
  description: Failed-login counter keys removed (or to remove), up to O(sample_size).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["loginfail:alice:192.168.1.100"]
sample:
  description: Up to O(sample_size) of the keys deleted or written (or to delete / write), sorted.
  returned: always
  type: list
  elements: str
  sample: ["lockout:alice:192.168.1.100", "loginfail:alice:192.168.1.100"]
remaining:
  description: Lockout keys of the user found after the delete (always 0 on success).
  returned: when O(state=absent)
  type: int
  sample: 0
verified:
  description:
    - V(true) when the result was read back from Redis and is as requested (no lockout left, or the lock exists).
    - V(null) in check mode when there is something to change (nothing was written to verify).
  returned: always
  type: bool
  sample: true
key:
  description: The lockout key (O(state=present)).
  returned: when O(state=present)
  type: str
  sample: lockout:bob:203.0.113.7
ttl:
  description: Seconds left on the lock (O(state=present)).
  returned: when O(state=present)
  type: int
  sample: 900
elapsed:
  description: Seconds spent reading and writing Redis.
  returned: always
  type: float
  sample: 0.004
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import ERRORS
from ansible_collections.apigw.ops.plugins.module_utils.key_scan import scan_engine_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import keyspace_argument_spec, keyspace_from_module
from ansible_collections.apigw.ops.plugins.module_utils.lockout import LockoutRequest
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import connect, redis_connection_argument_spec


def argument_spec():
    spec = dict(
        username=dict(type='str', required=True),
        ip=dict(type='str'),
        state=dict(type='str', default='absent', choices=['absent', 'present']),
        ttl=dict(type='int'),
        clear_failures=dict(type='bool', default=True),
    )
    spec.update(scan_engine_argument_spec(), **keyspace_argument_spec())
    spec.update(redis_connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        request = LockoutRequest(keyspace_from_module(module), module.params)  # input checks, no I/O
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    target = connect(module)
    try:
        plan = request.plan(target)  # read-only
        if plan.changed and not module.check_mode:
            plan.apply(target)  # the only write, then read back to verify
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=plan.changed, diff=plan.diff(), **plan.result())


if __name__ == '__main__':
    main()
