# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the apigw.ops.jwks filter."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.apigw.ops.plugins.filter.jwks import FilterModule
from ansible_collections.apigw.ops.plugins.module_utils import jwk as J

FILTERS = FilterModule().filters()


def _pems(alg):
    key = J.generate(J.resolve_spec(alg=alg))
    return J.private_pem(key).decode(), J.public_pem(key).decode(), J.thumbprint(key)


def test_jwks_from_public_and_private_pems():
    priv_rsa, pub_rsa, kid_rsa = _pems('RS256')
    _priv_ed, pub_ed, kid_ed = _pems('EdDSA')
    doc = FILTERS['jwks']([pub_rsa, pub_ed, priv_rsa])
    assert [k['kid'] for k in doc['keys']] == [kid_rsa, kid_ed]  # duplicates dropped
    assert doc['keys'][0]['alg'] == 'RS256' and doc['keys'][1]['alg'] == 'EdDSA'
    assert all('d' not in k and k['use'] == 'sig' for k in doc['keys'])


def test_single_pem_and_alg_override():
    _priv, pub, kid = _pems('RS256')
    assert FILTERS['jwks'](pub, alg='PS256')['keys'][0]['alg'] == 'PS256'
    assert FILTERS['jwks'](pub)['keys'][0]['kid'] == kid


def test_errors_are_filter_errors():
    _priv, pub, _kid = _pems('ES256')
    with pytest.raises(AnsibleFilterError, match='alg RS256 needs an RSA key'):
        FILTERS['jwks'](pub, alg='RS256')
    with pytest.raises(AnsibleFilterError, match='not a valid PEM'):
        FILTERS['jwks'](['garbage'])
    with pytest.raises(AnsibleFilterError, match='2 entries for 1 keys'):
        FILTERS['jwks']([pub], alg=['ES256', 'ES256'])
