#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_maintenance
short_description: Turn the gateway's maintenance mode on or off in Redis
version_added: 0.1.0
description:
  - Turns maintenance mode on (O(state=present)) or off (O(state=absent)) for every gateway replica at once
    (runbook "Maintenance Windows", "Enable maintenance mode (return 503 with Retry-After)").
  - "Maintenance mode is the hash C(gateway:maintenance) (keyspace entry C(maintenance)) with the fields the gateway
    reads: C(enabled), C(retry_after) and C(message) (O(maintenance_message)). While it is on, the gateway answers
    every API route with C(503), a C(Retry-After: <retry_after>) header and C(message) in the JSON body;
    C(/healthz), C(/metrics) and C(/.well-known/jwks.json) keep answering, and C(/readyz) answers C(503) with
    C({\"status\": \"maintenance\"}) so load balancers take the replicas out. Each replica re-reads the hash
    every C(MAINTENANCE_POLL_MS) (1 s by default)."
  - "For the audit trail the module also writes fields the gateway ignores: C(enabled_at) (UTC, kept while the
    window lasts), C(expires_at), and O(reason) and O(operator) when given, so
    C(redis-cli hgetall gateway:maintenance) tells who turned it on, why, since when and until when."
  - With O(ttl) or O(expires), a forgotten window ends by itself - the hash expires and the gateway leaves
    maintenance at its next poll. Without them, maintenance lasts until O(state=absent).
  - O(state=absent) deletes the hash when it says maintenance is on (the gateway's default is off). A hash whose
    C(enabled) is not on is already off and is left as it is.
  - The result is read back from Redis and verified. RV(previous) and RV(maintenance) report the state before and
    after as the gateway sees it, so the module in check mode also answers "is maintenance on?" - there is no
    separate C(_info) module.
author:
  - apigw.ops maintainers (@apigw-ops)
extends_documentation_fragment:
  - apigw.ops.redis_connection
  - apigw.ops.keyspace
attributes:
  check_mode:
    support: full
    description: The same read-only plan as a real run; C(changed), the diff and RV(maintenance) are exact
      predictions (timestamps are those of the check run).
  diff_mode:
    support: full
    description: The fields of the maintenance hash before and after (V(null) when there is no hash).
  idempotent:
    support: full
    description: Turning maintenance on with the same O(retry_after), O(maintenance_message), O(reason), O(operator) and
      expiry, or off when it is off, reports C(changed=false). C(enabled_at) and an existing O(ttl) expiry are not
      renewed.
options:
  state:
    description:
      - V(present) - maintenance mode is on, with these values. V(absent) - it is off.
    type: str
    choices: [present, absent]
    default: present
  retry_after:
    description:
      - Seconds clients should wait before retrying (the C(Retry-After) header of the 503s); 1 to 86400.
      - Defaults to the gateway's own default, V(300).
      - Only with O(state=present).
    type: int
  maintenance_message:
    description:
      - The message of the 503 body (hash field C(message)); one line, at most 500 characters (the gateway shows
        no more). Not named C(message) because Ansible reserves that name.
      - Defaults to the gateway's own default, V(Service temporarily unavailable for maintenance).
      - Only with O(state=present).
    type: str
  reason:
    description:
      - Why maintenance is on (audit field C(reason); the gateway does not show it to clients). One line.
      - While maintenance stays on, a run without O(reason) keeps the recorded one.
      - Only with O(state=present).
    type: str
  operator:
    description:
      - Who turned maintenance on, for example a user or a job id (audit field C(operator)). One line.
      - While maintenance stays on, a run without O(operator) keeps the recorded one.
      - Only with O(state=present).
    type: str
  ttl:
    description:
      - Seconds after which maintenance ends by itself (the hash expires), counted from when it is turned on.
      - When maintenance is already on with an expiry, that expiry is kept, not extended; use O(expires) to move it.
      - Without O(ttl) or O(expires), maintenance has no expiry (an earlier one is removed).
      - Only with O(state=present); mutually exclusive with O(expires).
    type: int
  expires:
    description:
      - When maintenance ends by itself, as ISO 8601 with a time zone (V(2026-01-15T04:00:00Z)) or epoch seconds;
        must be in the future. Recorded as C(expires_at), in UTC.
      - Giving the same time again changes nothing; a different time moves the expiry.
      - Only with O(state=present); mutually exclusive with O(ttl).
    type: str
notes:
  - The gateway picks the change up within C(MAINTENANCE_POLL_MS) on every replica; wait that long (and for
    in-flight requests to finish) before relying on it - the C(maintenance.yml) playbook of this collection does.
  - A key of another type than hash at the maintenance key fails the module and is not touched (the gateway
    cannot read it either).
seealso:
  - module: apigw.ops.redis_backup
'''

EXAMPLES = r'''
- name: Maintenance on, for at most two hours
  apigw.ops.gateway_maintenance:
    retry_after: 600
    maintenance_message: Scheduled maintenance until 04:00 UTC
    reason: CHG-1234 Redis upgrade
    operator: "{{ lookup('ansible.builtin.env', 'USER') }}"
    ttl: 7200
  register: maintenance

- name: Maintenance on until a fixed time (running again with the same time changes nothing)
  apigw.ops.gateway_maintenance:
    expires: "2026-01-15T04:00:00Z"

- name: Is maintenance on? (check mode never writes; previous is the state found)
  apigw.ops.gateway_maintenance:
    state: absent
  check_mode: true
  register: probe

- name: Report it
  ansible.builtin.debug:
    msg: "Maintenance is {{ 'on since ' ~ probe.previous.enabled_at if probe.previous.enabled else 'off' }}"

- name: Maintenance off
  apigw.ops.gateway_maintenance:
    state: absent
'''

RETURN = r'''
key:
  description: The Redis key of the maintenance hash.
  returned: always
  type: str
  sample: gateway:maintenance
state:
  description: The state requested.
  returned: always
  type: str
  sample: present
maintenance:
  description:
    - Maintenance mode after the run (in check mode, as it would be), as the gateway reads it.
  returned: always
  type: dict
  contains:
    enabled:
      description: Whether the gateway answers API routes with 503.
      type: bool
      sample: true
    retry_after:
      description: The C(Retry-After) seconds of the 503s; V(null) when maintenance is off.
      type: int
      sample: 600
    message:
      description: The message of the 503 body; V(null) when maintenance is off.
      type: str
      sample: Scheduled maintenance until 04:00 UTC
    reason:
      description: The recorded reason, if any.
      type: str
      sample: CHG-1234 Redis upgrade
    operator:
      description: The recorded operator, if any.
      type: str
      sample: alice
    enabled_at:
      description: When this maintenance window started (UTC, ISO 8601), if recorded.
      type: str
      sample: "2026-01-15T02:00:00Z"
    expires_at:
      description: When maintenance ends by itself (UTC, ISO 8601), or V(null).
      type: str
      sample: "2026-01-15T04:00:00Z"
    ttl:
      description: Seconds until the hash expires, or V(null) when it has no expiry.
      type: int
      sample: 7200
previous:
  description:
    - Maintenance mode as it was found before the run, with the same fields as RV(maintenance). Run the module in
      check mode to read the state without changing it.
  returned: always
  type: dict
  sample: {"enabled": false, "retry_after": null, "message": null, "reason": null, "operator": null,
           "enabled_at": null, "expires_at": null, "ttl": null}
verified:
  description:
    - V(true) when the state was read back from Redis and is as requested.
    - V(null) in check mode when there is something to change (nothing was written to verify).
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds spent reading and writing Redis.
  returned: always
  type: float
  sample: 0.002
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import ERRORS
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import keyspace_argument_spec, keyspace_from_module
from ansible_collections.apigw.ops.plugins.module_utils.maintenance import MaintenanceRequest
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import connect, redis_connection_argument_spec


def argument_spec():
    spec = dict(
        state=dict(type='str', default='present', choices=['present', 'absent']),
        retry_after=dict(type='int'),
        maintenance_message=dict(type='str'),
        reason=dict(type='str'),
        operator=dict(type='str'),
        ttl=dict(type='int'),
        expires=dict(type='str'),
    )
    spec.update(keyspace_argument_spec())
    spec.update(redis_connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        request = MaintenanceRequest(keyspace_from_module(module), module.params)  # input checks, no I/O
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    target = connect(module)
    try:
        plan = request.plan(target)  # read-only
        if plan.changed and not module.check_mode:
            plan.apply(target)  # the only write (one MULTI/EXEC), then read back to verify
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=plan.changed, diff=plan.diff(), **plan.result())


if __name__ == '__main__':
    main()
