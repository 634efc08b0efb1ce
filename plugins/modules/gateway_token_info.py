#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: gateway_token_info
short_description: List a user's refresh tokens and whether each is revoked
version_added: 0.1.0
description:
  - Reads the hash C(token:user:<user_id>) (jti -> exp) and, for each token (or each O(jti) given), whether
    C(token:blacklist:<jti>) exists and its TTL. Two pipelined round trips; nothing is ever written.
author:
  - apigw.ops maintainers (@apigw-ops)
extends_documentation_fragment:
  - apigw.ops.redis_connection
  - apigw.ops.keyspace
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
  user_id:
    description:
      - The user whose tokens to list.
    type: str
  jti:
    description:
      - Only these token ids (C(^[A-Za-z0-9._~-]{8,128}$)). Without O(user_id) their expiry is unknown.
    type: list
    elements: str
notes:
  - Requires either O(user_id) or O(jti).
seealso:
  - module: apigw.ops.gateway_token
'''

EXAMPLES = r'''
- name: Which of user-123's refresh tokens are still usable?
  apigw.ops.gateway_token_info:
    user_id: user-123
  register: tokens

- name: Is this token revoked?
  apigw.ops.gateway_token_info:
    jti: 6f1c1e0e-8f7c-4a57-9d55-0b2f3a1d4c11
'''

RETURN = r'''
user_id:
  description: The user, if given.
  returned: always
  type: str
  sample: user-123
tokens:
  description: One entry per token, sorted by jti (in the order given for O(jti)).
  returned: always
  type: list
  elements: dict
  contains:
    jti:
      description: Token id.
      type: str
    exp:
      description: Expiry, epoch seconds; V(null) if unknown.
      type: int
    expires_in:
      description: Seconds until expiry (0 if expired); V(null) if unknown.
      type: int
    expired:
      description: Whether the token is past its expiry.
      type: bool
    revoked:
      description: Whether a revocation exists.
      type: bool
    revoked_ttl:
      description: Seconds the revocation remains; V(null) if not revoked or without expiry.
      type: int
  sample: [{jti: a1b2c3d4e5f6, exp: 1767225600, expires_in: 3600, expired: false, revoked: true, revoked_ttl: 3600}]
count:
  description: Number of tokens listed.
  returned: always
  type: int
  sample: 3
live:
  description: Tokens not expired (or of unknown expiry).
  returned: always
  type: int
  sample: 2
live_not_revoked:
  description: Live tokens that are not revoked - the ones that can still be refreshed.
  returned: always
  type: int
  sample: 0
elapsed:
  description: Seconds spent reading Redis.
  returned: always
  type: float
  sample: 0.002
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.gateway_keys import ERRORS
from ansible_collections.apigw.ops.plugins.module_utils.keyspace import keyspace_argument_spec, keyspace_from_module
from ansible_collections.apigw.ops.plugins.module_utils.redis_connection import connect, redis_connection_argument_spec
from ansible_collections.apigw.ops.plugins.module_utils.tokens import TokenRequest, token_info


def argument_spec():
    spec = dict(
        user_id=dict(type='str'),
        jti=dict(type='list', elements='str'),
    )
    spec.update(keyspace_argument_spec())
    spec.update(redis_connection_argument_spec())
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    try:
        request = TokenRequest(keyspace_from_module(module), module.params, info=True)
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    target = connect(module)
    try:
        info = token_info(request, target)
    except ERRORS as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **info)


if __name__ == '__main__':
    main()
