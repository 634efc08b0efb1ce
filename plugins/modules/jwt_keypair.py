#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
module: jwt_keypair
short_description: Generate, validate or remove one JWT signing key pair
version_added: 0.1.0
description:
  - Creates a private key (PKCS#8 PEM, optionally passphrase-protected) and its public key (SubjectPublicKeyInfo PEM)
    for signing JWTs, replacing the runbook's C(openssl genrsa) / C(openssl rsa -pubout) steps of "Rotate JWT Keys".
  - Key types are RSA (2048, 3072 or 4096 bits; anything under 2048 is refused), EC (P-256, P-384, P-521) and
    Ed25519. The JWS algorithm the key is meant for (O(alg)) is checked against the key type.
  - Returns the key ID (RFC 7638 JWK thumbprint), the public JWK and fingerprints, ready for M(apigw.ops.jwt_keyset).
  - An existing key is kept as long as it matches the options; what happens when it does not is set by O(regenerate).
    A new key means a new C(kid) and, once it signs, tokens signed by the old key stop verifying unless the old key
    stays published - rotate with M(apigw.ops.jwt_keyset) rather than regenerating a key in place.
author:
  - apigw.ops maintainers (@apigw)
extends_documentation_fragment:
  - apigw.ops.key_files
attributes:
  check_mode:
    support: full
    description: Runs the same read-only plan as a real run, so C(changed) is predicted exactly.
      When a new key would be generated its C(kid) is not known yet and is returned as V(null).
  diff_mode:
    support: full
    description: Shows kid, type, size/curve, alg and file modes before and after; never key material.
  idempotent:
    support: full
    description: A second run with the same options reports C(changed=false) (unless O(regenerate=always)).
options:
  path:
    description:
      - Path of the private key file. Its directory must exist.
    type: path
    required: true
  public_key_path:
    description:
      - Path of the public key file.
      - Defaults to O(path) with C(.pem) replaced by C(.pub.pem) (C(jwt.pem) -> C(jwt.pub.pem)), or C(.pub) appended
        when O(path) does not end in C(.pem).
    type: path
  state:
    description:
      - V(present) makes sure the key pair exists and matches the options.
      - V(absent) removes both files (kept as backups with O(backup=true)).
    type: str
    choices: [present, absent]
    default: present
  type:
    description:
      - Key type. Defaults to the type O(alg) needs, or V(RSA) when O(alg) is not set either.
    type: str
    choices: [RSA, EC, Ed25519]
  size:
    description:
      - RSA modulus size in bits; sizes under 2048 are refused. Defaults to V(2048) for RSA.
      - Does not apply to EC (choose O(curve)) or Ed25519.
    type: int
  curve:
    description:
      - EC curve, as named in JWK (RFC 7518). Defaults to the curve O(alg) needs, else V(P-256).
    type: str
    choices: [P-256, P-384, P-521]
  alg:
    description:
      - JWS algorithm the key is meant for; returned and checked against the key type
        (RS*/PS* need RSA, V(ES256) P-256, V(ES384) P-384, V(ES512) P-521, V(EdDSA) Ed25519).
      - Defaults to V(RS256) for RSA, the matching ES* for EC and V(EdDSA) for Ed25519.
    type: str
    choices: [RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA]
  passphrase:
    description:
      - Passphrase protecting the private key (PKCS#8 encryption with the best cipher available).
      - Never returned, logged or shown in a diff.
      - Note that the gateway must then be given the passphrase to load the key.
    type: str
  regenerate:
    description:
      - What to do with an existing private key. A missing key is always created, whatever the value.
      - V(never) keeps an existing readable key even if its size does not match, as long as it can sign with O(alg) and
        is not under 2048 bits; fails if it cannot be read (corrupted, wrong or missing passphrase).
      - V(fail) (default) fails when the existing key cannot be read or does not match
        O(type)/O(size)/O(curve)/O(passphrase), with a message saying why; nothing is changed. A key that is too
        small or of the wrong type is reported as such.
      - V(partial_idempotence) replaces a readable key that does not match the options; fails on an unreadable key.
      - V(full_idempotence) also replaces a key it cannot read (corrupted file, unknown passphrase). Use O(backup=true)!
      - V(always) generates a new key on every run (never idempotent).
      - A readable matching key in another PEM format (for example C(BEGIN RSA PRIVATE KEY)) is converted to PKCS#8 in
        place; the key, hence the C(kid), does not change.
      - The default differs from community.crypto (V(full_idempotence)) on purpose - replacing a signing key
        invalidates every token it signed.
    type: str
    choices: [never, fail, partial_idempotence, full_idempotence, always]
    default: fail
  backup:
    description:
      - Keep the previous file as C(<file>.<pid>.<date>@<time>~) before replacing or removing it.
    type: bool
    default: false
  return_content:
    description:
      - "Also return the private key PEM in RV(private_key). Use C(no_log: true) on the task."
    type: bool
    default: false
  mode:
    description:
      - Permissions of the private key file, as an octal string. Applied to existing files too.
    type: raw
    default: '0600'
  public_key_mode:
    description:
      - Permissions of the public key file, as an octal string. Applied to existing files too.
    type: raw
    default: '0644'
seealso:
  - module: apigw.ops.jwt_keyset
  - module: community.crypto.openssl_privatekey
  - name: RFC 7638 - JSON Web Key (JWK) Thumbprint
    description: How the C(kid) is computed.
    link: https://www.rfc-editor.org/rfc/rfc7638
'''

EXAMPLES = r'''
- name: Generate the next RSA signing key (runbook "Rotate JWT Keys" step 1)
  apigw.ops.jwt_keypair:
    path: /etc/gateway/keys-src/jwt-2026-02.pem
    owner: gateway
    group: gateway
  register: new_key

- name: An ES256 key (type and curve follow from alg)
  apigw.ops.jwt_keypair:
    path: /etc/gateway/keys-src/es256.pem
    alg: ES256

- name: Ed25519 key protected by a passphrase
  apigw.ops.jwt_keypair:
    path: /etc/gateway/keys-src/ed.pem
    type: Ed25519
    passphrase: "{{ vault_jwt_passphrase }}"

- name: Replace a key that no longer matches (3072 bits now), keeping the old file
  apigw.ops.jwt_keypair:
    path: /etc/gateway/keys-src/jwt.pem
    size: 3072
    regenerate: partial_idempotence
    backup: true

- name: Get the private key for a secret store
  apigw.ops.jwt_keypair:
    path: /etc/gateway/keys-src/jwt.pem
    return_content: true
  no_log: true
  register: key

- name: Remove a key pair
  apigw.ops.jwt_keypair:
    path: /etc/gateway/keys-src/jwt-2025-01.pem
    state: absent
'''

RETURN = r'''
private_key_path:
  description: Path of the private key (O(path)).
  returned: always
  type: str
  sample: /etc/gateway/keys-src/jwt.pem
public_key_path:
  description: Path of the public key.
  returned: always
  type: str
  sample: /etc/gateway/keys-src/jwt.pub.pem
kid:
  description:
    - RFC 7638 JWK thumbprint (SHA-256, base64url) of the key, used as the JWT C(kid).
    - V(null) with O(state=absent), and in check mode when a new key would be generated.
  returned: always
  type: str
  sample: NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs
alg:
  description: JWS algorithm of the key.
  returned: always
  type: str
  sample: RS256
type:
  description: Key type (V(RSA), V(EC), V(Ed25519)).
  returned: always
  type: str
  sample: RSA
size:
  description: Key size in bits (the modulus for RSA, the curve size for EC, 256 for Ed25519).
  returned: always
  type: int
  sample: 2048
curve:
  description: EC curve, V(null) for other types.
  returned: always
  type: str
  sample: P-256
public_key:
  description: Public key, SubjectPublicKeyInfo PEM. V(null) when no key exists after the run (or is not known yet in
    check mode).
  returned: always
  type: str
  sample: "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqh...\n-----END PUBLIC KEY-----\n"
jwk:
  description: Public JWK (public members only) with C(kid), C(alg) and C(use=sig). V(null) like RV(public_key).
  returned: always
  type: dict
  sample: {"kty": "RSA", "n": "0vx7ag...", "e": "AQAB", "kid": "NzbLsXh8...", "alg": "RS256", "use": "sig"}
fingerprints:
  description:
    - Fingerprints (colon-separated hex) of the DER SubjectPublicKeyInfo, the same as
      C(openssl pkey -pubin -outform DER | openssl dgst -sha256 -c). V(null) like RV(public_key).
  returned: always
  type: dict
  sample: {"sha256": "3b:8f:...", "sha1": "a1:02:..."}
private_key:
  description: The private key PEM (encrypted if O(passphrase) is set). Mark the task C(no_log).
  returned: when O(return_content=true) and a key exists
  type: str
backup_file:
  description: Backup of the previous private key.
  returned: when O(backup=true) and the private key was replaced or removed
  type: str
  sample: /etc/gateway/keys-src/jwt.pem.2211.2026-02-01@10:00:00~
public_key_backup_file:
  description: Backup of the previous public key.
  returned: when O(backup=true) and the public key was replaced or removed
  type: str
actions:
  description: What the run did (or would do in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["create a new RSA 2048 key", "write public key /etc/gateway/keys-src/jwt.pub.pem"]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.apigw.ops.plugins.module_utils.jwk import (
    ALGORITHMS,
    CURVES,
    HAS_CRYPTOGRAPHY,
    KEY_TYPES,
    MISSING_CRYPTOGRAPHY,
    REGENERATE_CHOICES,
    JwkError,
    plan_keypair,
)


def argument_spec():
    return dict(
        path=dict(type='path', required=True),
        public_key_path=dict(type='path'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        type=dict(type='str', choices=list(KEY_TYPES)),
        size=dict(type='int'),
        curve=dict(type='str', choices=list(CURVES)),
        alg=dict(type='str', choices=sorted(ALGORITHMS)),
        passphrase=dict(type='str', no_log=True),
        regenerate=dict(type='str', choices=list(REGENERATE_CHOICES), default='fail'),
        backup=dict(type='bool', default=False),
        return_content=dict(type='bool', default=False),
        mode=dict(type='raw', default='0600'),
        public_key_mode=dict(type='raw', default='0644'),
        owner=dict(type='str'),
        group=dict(type='str'),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=MISSING_CRYPTOGRAPHY)
    try:
        plan = plan_keypair(module.params)          # read-only
        if plan.changed and not module.check_mode:
            plan.apply()                            # the only writes
    except JwkError as exc:
        module.fail_json(msg=str(exc))
    for warning in plan.warnings:
        module.warn(warning)
    module.exit_json(changed=plan.changed, diff=plan.diff(), **plan.result(module.params['return_content']))


if __name__ == '__main__':
    main()
