#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: jwt_keyset
short_description: Manage the gateway's published JWT key set (active, next, overlap, retired keys)
version_added: 0.1.0
description:
  - Manages a key-set directory read by the gateway, so that JWT signing keys are rotated with an overlap window
    in which tokens signed by the old and the new key both verify (runbook "Rotate JWT Keys", steps 2-5).
  - "The directory holds C(keyset.json) = C({\"active\": kid, \"keys\": {kid: {alg, status, not_after, private_key,
    public_key}}}), C(jwks.json) (a JWKS with the public keys of the C(active), C(next) and C(verify) keys:
    C(kty), C(kid), C(alg), C(use=sig) and public members only) and the PEM files C(<kid>.pem) (0600) and
    C(<kid>.pub.pem) (0644)."
  - "Key statuses: C(next) - published, not signing yet (add a key as next one JWKS cache time before promoting it);
    C(active) - signs new tokens, exactly one; C(verify) - the previous active key, published until C(not_after);
    C(retired) - no longer published."
  - Promoting a key to V(active) demotes the previous active key to C(verify) with C(not_after = now + overlap).
    With O(retire_expired=true), C(verify) keys whose C(not_after) has passed are retired. The active key and the
    last published key are never retired, so C(jwks.json) is never empty.
  - Files are written in this order, each atomically - key files, C(jwks.json), C(keyset.json), then retired key
    files are deleted. Nothing is written when nothing changes. The gateway reloads the key set on SIGHUP.
  - The C(kid) of every key is its RFC 7638 JWK thumbprint.
author:
  - apigw.ops maintainers (@apigw)
extends_documentation_fragment:
  - apigw.ops.key_files
attributes:
  check_mode:
    support: full
    description: Runs the same read-only plan as a real run, so C(changed) and the returned JWKS are predicted exactly.
  diff_mode:
    support: full
    description: Shows the active kid and each key's status, alg and not_after before and after; never key material.
  idempotent:
    support: full
    description: A second run with the same options reports C(changed=false). Give O(now) or rely on the clock only
      for O(retire_expired); a promotion is not repeated, so C(not_after) is set once.
options:
  path:
    description:
      - The key-set directory. Created (mode 0755) if missing; its parent must exist.
    type: path
    required: true
  key:
    description:
      - A private key PEM file (for example written by M(apigw.ops.jwt_keypair)) to add to the set or change the role
        of.
      - Its bytes are copied to C(<kid>.pem) (0600) in the directory and its public key to C(<kid>.pub.pem) (0644).
      - Mutually exclusive with O(kid).
    type: path
  kid:
    description:
      - The kid of a key already in the set, to change its role or retire it without its source file.
    type: str
  passphrase:
    description:
      - Passphrase of O(key) if it is encrypted. The file is copied as is, so the gateway then needs the passphrase too.
    type: str
  alg:
    description:
      - JWS algorithm published for O(key); defaults to V(RS256) for RSA, the matching ES* for EC, V(EdDSA) for Ed25519.
      - Checked against the key type. Only with O(key).
    type: str
    choices: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]
  state:
    description:
      - V(present) puts O(key)/O(kid) in the set with O(role).
      - V(absent) retires O(key)/O(kid) now (removed from C(jwks.json), files handled per O(retired_files)).
        Refused for the active key and for the last published key.
    type: str
    choices: [present, absent]
    default: present
  role:
    description:
      - Status O(key)/O(kid) should have with O(state=present).
      - V(next) publishes the key without signing with it.
      - V(active) makes it the signing key and demotes the previous active key to V(verify) until now + O(overlap).
      - V(verify) publishes it for verification only until now + O(overlap) (kept unchanged if already V(verify)).
      - The active key cannot be set to V(next) or V(verify) - promote another key instead.
    type: str
    choices: [next, active, verify]
    default: next
  retire_expired:
    description:
      - Retire every C(verify) key whose C(not_after) is at or before O(now). Run it on a schedule, or as the last
        step of a rotation once the overlap is over.
    type: bool
    default: false
  overlap:
    description:
      - Seconds a demoted key stays published for verification. The default, 608400, is the refresh-token
        lifetime (7 days) plus the JWKS cache time (1 hour).
    type: int
    default: 608400
  now:
    description:
      - The current time as epoch seconds, used for C(not_after) and O(retire_expired). Defaults to the managed
        host's clock. Meant for tests and for reproducible runs.
    type: int
  retired_files:
    description:
      - What happens to the files of a retired key. V(keep_public) deletes the private key and keeps the public key
        (the default), V(keep_all) keeps both, V(delete) deletes both. A deleted file's name becomes V(null) in
        C(keyset.json).
    type: str
    choices: [keep_public, keep_all, delete]
    default: keep_public
seealso:
  - module: apigw.ops.jwt_keypair
  - name: RFC 7517 - JSON Web Key (JWK)
    description: The JWKS format of C(jwks.json).
    link: https://www.rfc-editor.org/rfc/rfc7517
'''

EXAMPLES = r'''
# A rotation, one step per run (see docs/jwt-rotation.md).
- name: Publish the new key as next (not signing yet)
  apigw.ops.jwt_keyset:
    path: /etc/gateway/keys
    key: /etc/gateway/keys-src/jwt-2026-02.pem
    role: next
    owner: gateway

# ... wait at least the JWKS cache time, so every client has the new key ...

- name: Promote it; the old key verifies for 7 days + 1 hour more
  apigw.ops.jwt_keyset:
    path: /etc/gateway/keys
    key: /etc/gateway/keys-src/jwt-2026-02.pem
    role: active
  register: keyset

- name: Tell the gateway to reload its keys
  ansible.builtin.command: pkill -HUP -f gateway
  when: keyset is changed

- name: Nightly - retire keys whose overlap is over
  apigw.ops.jwt_keyset:
    path: /etc/gateway/keys
    retire_expired: true

- name: Retire a compromised (non-active) key now
  apigw.ops.jwt_keyset:
    path: /etc/gateway/keys
    kid: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
    state: absent
    retired_files: delete

- name: Serve the JWKS from elsewhere
  ansible.builtin.copy:
    content: "{{ keyset.jwks | to_json }}"
    dest: /var/www/.well-known/jwks.json
    mode: '0644'
'''

RETURN = r'''
directory:
  description: The key-set directory (O(path)).
  returned: always
  type: str
  sample: /etc/gateway/keys
kid:
  description: kid (RFC 7638 thumbprint) of O(key) or O(kid); V(null) when neither was given.
  returned: always
  type: str
  sample: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
active:
  description: kid of the active (signing) key after the run, V(null) if there is none.
  returned: always
  type: str
keyset:
  description:
    - The C(keyset.json) document after the run (kids, statuses, C(not_after), file names; no key material).
    - In Jinja use C(result.keyset['keys']), not C(result.keyset.keys), which is the dict method.
  returned: always
  type: dict
  sample:
    active: 6Xq1vQ0hV3o1nqj1xg2mZBq8Vv9l8m9gRkR0y1c2d3E
    keys:
      NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs:
        alg: RS256
        status: verify
        not_after: 1767225600
        private_key: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.pem
        public_key: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.pub.pem
      6Xq1vQ0hV3o1nqj1xg2mZBq8Vv9l8m9gRkR0y1c2d3E:
        alg: RS256
        status: active
        not_after: null
        private_key: 6Xq1vQ0hV3o1nqj1xg2mZBq8Vv9l8m9gRkR0y1c2d3E.pem
        public_key: 6Xq1vQ0hV3o1nqj1xg2mZBq8Vv9l8m9gRkR0y1c2d3E.pub.pem
jwks:
  description: The JWKS document, exactly as in C(jwks.json) after the run (public keys only).
  returned: always
  type: dict
  sample: {"keys": [{"kty": "RSA", "kid": "NzbL...", "alg": "RS256", "use": "sig", "n": "0vx7...", "e": "AQAB"}]}
published:
  description: kids listed in C(jwks.json), active first, then next, then verify.
  returned: always
  type: list
  elements: str
retired:
  description: kids retired by this run.
  returned: always
  type: list
  elements: str
now:
  description: The time (epoch seconds) the run used.
  returned: always
  type: int
actions:
  description: What the run did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample:
    - "promote NzbL... as active"
    - "demote 6Xq1... to verify until 1767225600"
    - "update /etc/gateway/keys/jwks.json"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.jwk import (
    ALGORITHMS,
    DEFAULT_OVERLAP,
    HAS_CRYPTOGRAPHY,
    MISSING_CRYPTOGRAPHY,
    JwkError,
    plan_keyset,
)


def argument_spec():
    return dict(
        path=dict(type='path', required=True),
        key=dict(type='path'),
        kid=dict(type='str'),
        passphrase=dict(type='str', no_log=True),
        alg=dict(type='str', choices=sorted(ALGORITHMS)),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        role=dict(type='str', choices=['next', 'active', 'verify'], default='next'),
        retire_expired=dict(type='bool', default=False),
        overlap=dict(type='int', default=DEFAULT_OVERLAP),
        now=dict(type='int'),
        retired_files=dict(type='str', choices=['keep_public', 'keep_all', 'delete'], default='keep_public'),
        owner=dict(type='str'),
        group=dict(type='str'),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[('key', 'kid')])
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=MISSING_CRYPTOGRAPHY)
    try:
        plan = plan_keyset(module.params)           # read-only
        if plan.changed and not module.check_mode:
            plan.apply()                            # the only writes
    except JwkError as exc:
        module.fail_json(msg=str(exc))
    for warning in plan.warnings:
        module.warn(warning)
    module.exit_json(changed=plan.changed, diff=plan.diff(), **plan.result())


if __name__ == '__main__':
    main()
