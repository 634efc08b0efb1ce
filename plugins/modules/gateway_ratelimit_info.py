#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_ratelimit_info
short_description: List the gateway's rate-limit counters, totals per scope and the top subjects
version_added: 0.1.0
description:
  - Lists rate-limit counters of a O(scope) (and optional O(subject)) with their value and TTL, totals per scope,
    and with O(top) the subjects (IPs / user ids) with the highest counts - the runbook's "identify top IPs"
    during a DDoS, read from Redis instead of the logs.
  - Keys are found with C(SCAN) on every primary (never C(KEYS)); values and TTLs are read with pipelined
    C(GET)/C(TTL) on the node that holds each key. Nothing is ever written.
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
  scope:
    description:
      - V(global), V(user), V(auth), any other bucket the O(keyspace) defines, or V(all).
    type: str
    default: all
  subject:
    description:
      - Only the counters of these IPs / user ids (used literally). For a scope keyed by C(ip), each must be an IP
        (in any notation, it is put in the gateway's canonical form).
    type: list
    elements: str
  top:
    description:
      - Return in RV(top) the N subjects with the highest counts (summed over the scopes read). V(0) for none.
    type: int
    default: 0
  limit:
    description:
      - At most this many counters in RV(counters), highest values first. V(0) for all of them.
      - RV(matched), RV(totals) and RV(top) always cover every counter read.
    type: int
    default: 100
notes:
  - O(max_keys) caps how many counters are read; above it the task fails with a one-line message.
    O(batch_size) is not used.
seealso:
  - module: apigw.ops.gateway_ratelimit
'''

EXAMPLES = r'''
- name: Top 20 IPs by global request count (runbook "DDoS Attack", "Identify top IPs")
  apigw.ops.gateway_ratelimit_info:
    scope: global
    top: 20
    limit: 0
    max_keys: 0
  register: ddos

- name: Show them
  ansible.builtin.debug:
    msg: "{{ ddos.top | map(attribute='subject') | list }}"

- name: Counters of one user
  apigw.ops.gateway_ratelimit_info:
    scope: user
    subject: user-123
'''

RETURN = r'''
scope:
  description: The scope read.
  returned: always
  type: str
  sample: all
matched:
  description: Counters found.
  returned: always
  type: int
  sample: 3
counters:
  description: Counters, highest value first, at most O(limit).
  returned: always
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
      description: Counter value (V(null) if not an integer).
      type: int
    ttl:
      description: Seconds to expiry; V(null) if none.
      type: int
  sample: [{key: "ratelimit:global:10.0.0.1", scope: global, subject: 10.0.0.1, value: 120, ttl: 41}]
totals:
  description: Per scope, the number of counters and the sum of their values.
  returned: always
  type: dict
  sample: {global: {counters: 2, hits: 130}, user: {counters: 1, hits: 4}, auth: {counters: 0, hits: 0}}
top:
  description: The O(top) subjects with the highest counts, with the count per scope.
  returned: always
  type: list
  elements: dict
  sample: [{subject: 10.0.0.1, count: 125, scopes: {global: 120, auth: 5}}]
sample:
  description: Up to O(sample_size) of the keys found, sorted.
  returned: always
  type: list
  elements: str
  sample: ["ratelimit:global:10.0.0.1"]
scanned:
  description: Keys in the databases scanned (or exact keys looked up when O(subject) is given).
  returned: always
  type: int
  sample: 1330000
elapsed:
  description: Seconds spent reading Redis.
  returned: always
  type: float
  sample: 0.2
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import ERRORS
from ansible_collections.apigw.ops.plugins.module_utils.key_scan import scan_engine_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import keyspace_argument_spec, keyspace_from_module
from ansible_collections.apigw.ops.plugins.module_utils.ratelimit import RatelimitRequest, ratelimit_info
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import (
    RedisOpsError,
    connect,
    redis_connection_argument_spec,
)


def argument_spec():
    spec = dict(
        scope=dict(type='str', default='all'),
        subject=dict(type='list', elements='str'),
        top=dict(type='int', default=0),
        limit=dict(type='int', default=100),
    )
    spec.update(scan_engine_argument_spec(), **keyspace_argument_spec())
    spec.update(redis_connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        request = RatelimitRequest(keyspace_from_module(module), module.params, info=True)
        for name in ('top', 'limit'):
            if module.params[name] < 0:
                raise RedisOpsError('%s must be 0 or more (got %d).' % (name, module.params[name]))
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    target = connect(module)
    try:
        info = ratelimit_info(request, target, top=module.params['top'], limit=module.params['limit'])
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **info)


if __name__ == '__main__':
    main()
