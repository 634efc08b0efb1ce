#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_ratelimit
short_description: Clear or impose the gateway's rate-limit counters in Redis
version_added: 0.1.0
description:
  - Clears rate-limit counters by O(scope) and O(subject) (runbook "Clear Rate Limits"), or, with O(state=present),
    sets a counter to a value with a TTL to block one IP or user for a while (incident response).
  - Replaces C(redis-cli --scan --pattern "ratelimit:*" | xargs redis-cli del) - keys are found with C(SCAN) on every
    primary (never C(KEYS)), deleted with pipelined, batched C(UNLINK), capped by O(max_keys).
  - With O(subject), the exact keys are built from the key templates, so no scan is needed. Subjects are glob-escaped
    everywhere, so a subject of V(10.0.0.*) never matches V(10.0.0.1).
  - The keys are planned read-only first; the plan is then applied. Check mode runs the same plan and writes nothing.
author:
  - apigw.ops maintainers (@apigw-ops)
extends_documentation_fragment:
  - apigw.ops.redis_connection
  - apigw.ops.keyspace
  - apigw.ops.key_scan
attributes:
  check_mode:
    support: full
    description: The same read-only plan as a real run; RV(matched), RV(deleted), RV(sample) and C(changed) are exact.
  diff_mode:
    support: full
    description: Shows the number of counters and a bounded sample (O(sample_size)) of their keys before and after;
      for O(state=present), each counter's value and TTL before and after.
  idempotent:
    support: full
    description: Clearing cleared counters, or imposing a counter that already counts at least O(value) and expires,
      reports C(changed=false).
options:
  scope:
    description:
      - The rate-limit bucket. V(global) (per client IP), V(user) (per user id), V(auth) (login endpoint, per IP),
        any other bucket the O(keyspace) defines (an entry named C(ratelimit_<scope>)), or V(all).
      - O(scope=all) without O(subject) clears every counter and needs O(confirm_all=true).
    type: str
    required: true
  subject:
    description:
      - One or more IP addresses or user ids whose counters to act on. Each is used literally.
      - For a scope keyed by C(ip) (V(global), V(auth)), each subject must be an IP address; it is put in the
        gateway's canonical form (IPv6 compressed and lower case, V(::ffff:192.0.2.1) as C(192.0.2.1)), so
        V(2001:DB8:0::1) clears C(ratelimit:global:2001:db8::1). A user id is matched exactly.
      - With O(scope=all), an IP address applies to every scope, any other value to the scopes not keyed by C(ip).
      - Omit it to act on every counter of O(scope). An empty list or an empty string is refused.
    type: list
    elements: str
  state:
    description:
      - V(absent) deletes the counters.
      - V(present) sets the counter of each O(subject) to O(value) with O(ttl), unless it already counts at least
        O(value) and has a TTL (its TTL is then not extended). Needs one O(scope), not V(all).
    type: str
    choices: [absent, present]
    default: absent
  value:
    description:
      - Counter value to set with O(state=present); choose one above the gateway's limit for the scope to block it.
    type: int
  ttl:
    description:
      - Seconds until the imposed counter expires (O(state=present)); 1 or more.
    type: int
  confirm_all:
    description:
      - Must be V(true) to clear every counter (O(scope=all) without O(subject)).
    type: bool
    default: false
seealso:
  - module: apigw.ops.gateway_ratelimit_info
'''

EXAMPLES = r'''
- name: Clear the global rate limit of one IP (runbook "Clear rate limit for specific IP")
  apigw.ops.gateway_ratelimit:
    host: redis.internal
    password: "{{ redis_password }}"
    scope: global
    subject: 192.168.1.100

- name: Clear a user's counters
  apigw.ops.gateway_ratelimit:
    scope: user
    subject: [user-123, user-456]

- name: Clear every rate-limit counter on a cluster (runbook "Clear all rate limit data")
  apigw.ops.gateway_ratelimit:
    mode: cluster
    host: 10.0.0.5
    scope: all
    confirm_all: true
    max_keys: 0
  register: cleared

- name: Block an attacking IP on the login endpoint for an hour
  apigw.ops.gateway_ratelimit:
    scope: auth
    subject: 203.0.113.7
    state: present
    value: 1000000
    ttl: 3600
'''

RETURN = r'''
scope:
  description: The scope acted on.
  returned: always
  type: str
  sample: global
matched:
  description:
    - O(state=absent) - counters found (in check mode, counters that would be deleted).
    - O(state=present) - counters that already satisfied the request.
  returned: always
  type: int
  sample: 1042
deleted:
  description: Counters deleted; in check mode, counters that would be deleted.
  returned: when O(state=absent)
  type: int
  sample: 1042
set:
  description: Counters written (or, in check mode, that would be written).
  returned: when O(state=present)
  type: int
  sample: 1
sample:
  description: Up to O(sample_size) of the keys deleted or written, sorted.
  returned: always
  type: list
  elements: str
  sample: ["ratelimit:global:192.168.1.100"]
scanned:
  description: Keys in the databases scanned (or exact keys looked up when O(subject) is given).
  returned: when O(state=absent)
  type: int
  sample: 1330000
elapsed:
  description: Seconds spent reading and writing Redis.
  returned: always
  type: float
  sample: 2.41
counters:
  description: Each counter of O(subject) after the run (in check mode, as it would be).
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    key:
      description: Redis key.
      type: str
    scope:
      description: Scope of the counter.
      type: str
    subject:
      description: IP or user id.
      type: str
    value:
      description: Counter value.
      type: int
    ttl:
      description: Seconds to expiry; V(null) if none.
      type: int
  sample: [{key: "ratelimit:auth:203.0.113.7", scope: auth, subject: 203.0.113.7, value: 1000000, ttl: 3600}]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import ERRORS
from ansible_collections.apigw.ops.plugins.module_utils.key_scan import scan_engine_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import keyspace_argument_spec, keyspace_from_module
from ansible_collections.apigw.ops.plugins.module_utils.ratelimit import RatelimitRequest
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import connect, redis_connection_argument_spec


def argument_spec():
    spec = dict(
        scope=dict(type='str', required=True),
        subject=dict(type='list', elements='str'),
        state=dict(type='str', default='absent', choices=['absent', 'present']),
        value=dict(type='int'),
        ttl=dict(type='int'),
        confirm_all=dict(type='bool', default=False),
    )
    spec.update(scan_engine_argument_spec(), **keyspace_argument_spec())
    spec.update(redis_connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        request = RatelimitRequest(keyspace_from_module(module), module.params)  # input checks, no I/O
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    target = connect(module)
    try:
        plan = request.plan(target)  # read-only
        if plan.changed and not module.check_mode:
            plan.apply(target)  # the only write
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=plan.changed, diff=plan.diff(), **plan.result())


if __name__ == '__main__':
    main()
