#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_token
short_description: Revoke (or un-revoke) the gateway's refresh tokens in Redis
version_added: 0.1.0
description:
  - Revokes refresh tokens by O(jti), or every live token of O(user_id) (runbook "Revoke Refresh Token"), by writing
    C(token:blacklist:<jti>) = C(1) with a TTL equal to the token's remaining lifetime, capped at
    O(refresh_lifetime).
  - A user's tokens and their expiry are read from the hash C(token:user:<user_id>) (jti -> exp, epoch seconds).
    A bare O(jti) whose expiry is not known gets the cap. Tokens that have already expired are not revoked (the
    gateway refuses them anyway) and are listed in RV(expired).
  - All reads and all writes for any number of tokens go in one pipelined round trip each (split per node on a
    cluster), instead of one C(redis-cli setex) per token. The result is read back and verified.
  - With O(state=absent) and O(allow_unrevoke=true), removes revocations so the tokens work again.
author:
  - apigw.ops maintainers (@apigw-ops)
extends_documentation_fragment:
  - apigw.ops.redis_connection
  - apigw.ops.keyspace
attributes:
  check_mode:
    support: full
    description: The same read-only plan as a real run; C(changed), RV(revoked) and RV(unrevoked) are exact.
  diff_mode:
    support: full
    description: Lists the revoked token ids of the request before and after.
  idempotent:
    support: full
    description: Revoking a revoked token, or un-revoking a token that is not revoked, reports C(changed=false).
      The TTL of an existing revocation is left as it is.
options:
  jti:
    description:
      - One or more token ids (the JWT C(jti) claim). Each must match C(^[A-Za-z0-9._~-]{8,128}$).
      - With O(user_id) too, only these of the user's tokens, with their expiry from the user's hash.
    type: list
    elements: str
  user_id:
    description:
      - The user whose tokens to act on - every token in C(token:user:<user_id>), or only O(jti) if given.
    type: str
  state:
    description:
      - V(present) - the tokens are revoked. V(absent) - they are not (needs O(allow_unrevoke=true)).
    type: str
    choices: [present, absent]
    default: present
  allow_unrevoke:
    description:
      - Must be V(true) for O(state=absent). Un-revoking lets a refresh token be used again; make sure policy
        allows it.
    type: bool
    default: false
  refresh_lifetime:
    description:
      - Longest TTL of a revocation, in seconds - the gateway's refresh-token lifetime (7 days by default). Also the
        TTL for a O(jti) whose expiry is unknown.
    type: int
    default: 604800
notes:
  - Requires either O(jti) or O(user_id).
seealso:
  - module: apigw.ops.gateway_token_info
'''

EXAMPLES = r'''
- name: Revoke one refresh token
  apigw.ops.gateway_token:
    jti: 6f1c1e0e-8f7c-4a57-9d55-0b2f3a1d4c11

- name: Revoke every live refresh token of a user (log them out everywhere)
  apigw.ops.gateway_token:
    user_id: user-123
  register: revoked

- name: Un-revoke a token revoked by mistake
  apigw.ops.gateway_token:
    jti: 6f1c1e0e-8f7c-4a57-9d55-0b2f3a1d4c11
    state: absent
    allow_unrevoke: true
'''

RETURN = r'''
user_id:
  description: The user acted on, if given.
  returned: always
  type: str
  sample: user-123
tokens:
  description: Number of tokens considered (the given jtis, or the tokens in the user's hash).
  returned: always
  type: int
  sample: 3
revoked:
  description: Token ids revoked by this run (in check mode, that would be).
  returned: when O(state=present)
  type: list
  elements: str
  sample: [a1b2c3d4e5f6]
already_revoked:
  description: Token ids that were revoked already (left as they are).
  returned: when O(state=present)
  type: list
  elements: str
  sample: []
unrevoked:
  description: Token ids whose revocation this run removed (in check mode, would remove).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: [a1b2c3d4e5f6]
not_revoked:
  description: Token ids that were not revoked (nothing to remove).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: []
expired:
  description: Token ids already past their expiry, so not revoked.
  returned: always
  type: list
  elements: str
  sample: []
verified:
  description: V(true) when the revocations were read back and are as requested; V(null) in check mode with changes.
  returned: always
  type: bool
  sample: true
elapsed:
  description: Seconds spent reading and writing Redis.
  returned: always
  type: float
  sample: 0.01
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import ERRORS
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import keyspace_argument_spec, keyspace_from_module
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import connect, redis_connection_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.tokens import TokenRequest


def argument_spec():
    spec = dict(
        jti=dict(type='list', elements='str'),
        user_id=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        allow_unrevoke=dict(type='bool', default=False),
        refresh_lifetime=dict(type='int', default=604800),
    )
    spec.update(keyspace_argument_spec())
    spec.update(redis_connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        request = TokenRequest(keyspace_from_module(module), module.params)  # input checks, no I/O
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    target = connect(module)
    try:
        plan = request.plan(target)  # read-only
        if plan.changed and not module.check_mode:
            plan.apply(target)  # the only write (one pipeline), then read back to verify
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=plan.changed, diff=plan.diff(), **plan.result())


if __name__ == '__main__':
    main()
