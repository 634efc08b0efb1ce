# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r'''
name: jwks
short_description: Build a JWKS document from PEM keys
version_added: 0.1.0
description:
  - "Returns the JWKS document C({\"keys\": [...]}) for one PEM key or a list of PEM keys, as the gateway publishes it:
    public members only, C(kid) = RFC 7638 thumbprint, C(alg) and C(use=sig)."
  - Private keys are accepted (only their public part is used); encrypted ones are not. Duplicate keys are listed once.
  - "One key's JWK is C((pem | apigw.ops.jwks)['keys'][0]) and its kid C((pem | apigw.ops.jwks)['keys'][0].kid)."
  - Needs the C(cryptography) Python library on the controller.
options:
  _input:
    description: A PEM string, or a list of PEM strings (public or unencrypted private keys).
    type: raw
    required: true
  alg:
    description:
      - JWS algorithm of the keys, one string for all or a list with one entry per input key.
      - Defaults per key to V(RS256) (RSA), V(ES256)/V(ES384)/V(ES512) (EC, by curve), V(EdDSA) (Ed25519).
      - An alg that does not fit the key type is an error.
    type: raw
seealso:
  - module: apigw.ops.jwt_keyset
author:
  - apigw.ops maintainers (@apigw)
'''

EXAMPLES = r'''
- name: Publish the JWKS of the new and the old public key
  ansible.builtin.copy:
    content: "{{ [lookup('file', 'new.pub.pem'), lookup('file', 'old.pub.pem')] | apigw.ops.jwks | to_nice_json }}"
    dest: /var/www/.well-known/jwks.json
    mode: '0644'

- name: kid of a key
  ansible.builtin.debug:
    msg: "{{ (lookup('file', 'new.pub.pem') | apigw.ops.jwks)['keys'][0].kid }}"

- name: JWKS of an RSA key meant for PS256
  ansible.builtin.debug:
    msg: "{{ lookup('file', 'new.pub.pem') | apigw.ops.jwks(alg='PS256') }}"
'''

RETURN = r'''
_value:
  description: The JWKS document, a dict with one item C(keys), the list of public JWKs (C(kty), C(kid), C(alg), C(use),
    public members).
  type: dict
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_bytes
from ansible.module_utils.six import string_types

from ansible_collections.apigw.ops.plugins.module_utils.jwk import (
    HAS_CRYPTOGRAPHY,
    MISSING_CRYPTOGRAPHY,
    JwkError,
    alg_mismatch,
    describe,
    load_public_any,
    public_jwk,
)


def _key(pem, what):
    if not HAS_CRYPTOGRAPHY:
        raise AnsibleFilterError(MISSING_CRYPTOGRAPHY.replace('managed host', 'controller'))
    if not isinstance(pem, (string_types, bytes)):
        raise AnsibleFilterError('%s: expected a PEM string, got %s.' % (what, type(pem).__name__))
    try:
        return load_public_any(to_bytes(pem), what=what)
    except JwkError as exc:
        raise AnsibleFilterError(str(exc))


def _jwk(pem, alg, what):
    key = _key(pem, what)
    if alg is not None:
        problem = alg_mismatch(alg, describe(key))
        if problem:
            raise AnsibleFilterError('%s: %s' % (what, problem))
    return public_jwk(key, alg)


def jwks(pems, alg=None):
    """JWKS document of one or more PEM keys."""
    if isinstance(pems, (string_types, bytes)):
        pems = [pems]
    pems = list(pems)
    if isinstance(alg, (list, tuple)):
        if len(alg) != len(pems):
            raise AnsibleFilterError('jwks: alg has %d entries for %d keys.' % (len(alg), len(pems)))
        algs = list(alg)
    else:
        algs = [alg] * len(pems)
    keys, seen = [], set()
    for index, (pem, one_alg) in enumerate(zip(pems, algs)):
        item = _jwk(pem, one_alg, 'jwks input #%d' % index)
        if item['kid'] not in seen:
            seen.add(item['kid'])
            keys.append(item)
    return {'keys': keys}


class FilterModule(object):
    """apigw.ops.jwks filter."""

    def filters(self):
        return {'jwks': jwks}
