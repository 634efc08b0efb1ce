# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of plugins/module_utils/jwk.py and atomic_file.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import os
import pathlib
import stat

import pytest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.module_utils import jwk as J

# RFC 7638 section 3.1: the example key and its thumbprint.
RFC7638_N = ('0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZ'
             'CiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8K'
             'JZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_'
             'xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw')
RFC7638_KID = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'


def test_rfc7638_thumbprint_of_the_rfc_jwk():
    jwk = {'kty': 'RSA', 'n': RFC7638_N, 'e': 'AQAB', 'alg': 'RS256', 'kid': '2011-04-29'}
    assert J.thumbprint(jwk) == RFC7638_KID


def test_rfc7638_thumbprint_of_a_key_built_by_pyjwt():
    """The RFC key is turned into a key object by PyJWT (not our code); our kid must match the RFC."""
    jwt_algorithms = pytest.importorskip('jwt.algorithms')
    key = jwt_algorithms.RSAAlgorithm.from_jwk(json.dumps({'kty': 'RSA', 'n': RFC7638_N, 'e': 'AQAB'}))
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    loaded = J.load_public_any(pem)
    assert J.thumbprint(loaded) == RFC7638_KID
    assert J.public_jwk(loaded)['kid'] == RFC7638_KID
    assert J.public_jwk(loaded)['n'] == RFC7638_N


@pytest.mark.parametrize('alg, members', [
    ('RS256', {'kty', 'n', 'e'}), ('PS256', {'kty', 'n', 'e'}), ('ES256', {'kty', 'crv', 'x', 'y'}),
    ('ES384', {'kty', 'crv', 'x', 'y'}), ('ES512', {'kty', 'crv', 'x', 'y'}), ('EdDSA', {'kty', 'crv', 'x'}),
])
def test_public_jwk_has_only_public_members(alg, members):
    spec = J.resolve_spec(alg=alg)
    key = J.generate(spec)
    jwk = J.public_jwk(key, alg)
    assert set(jwk) == members | {'kid', 'alg', 'use'}
    assert jwk['use'] == 'sig' and jwk['alg'] == alg
    assert jwk['kid'] == J.thumbprint(key.public_key())
    # round trip through PyJWT, which parses JWKs with its own code
    jwt_api = pytest.importorskip('jwt')
    parsed = jwt_api.PyJWK.from_dict(jwk)
    assert J.thumbprint(parsed.key if hasattr(parsed.key, 'public_bytes') else parsed.key.public_key()) == jwk['kid']


def test_ec_p521_coordinates_are_fixed_length():
    key = J.generate(J.resolve_spec(curve='P-521'))
    jwk = J.public_jwk(key)
    assert len(jwk['x']) == len(jwk['y']) == 88  # 66 bytes base64url
    assert jwk['alg'] == 'ES512'


@pytest.mark.parametrize('kwargs, message', [
    (dict(size=1024), 'RSA key size 1024 is refused: use at least 2048 bits'),
    (dict(size=2047), 'is refused'),
    (dict(size=5000), 'not supported'),
    (dict(curve='P-192'), 'Unknown curve P-192'),
    (dict(key_type='EC', alg='RS256'), 'alg RS256 needs an RSA key, not EC P-256'),
    (dict(key_type='RSA', alg='EdDSA'), 'alg EdDSA needs an Ed25519 key, not RSA 2048'),
    (dict(curve='P-384', alg='ES256'), 'alg ES256 needs an EC P-256 key, not EC P-384'),
    (dict(key_type='Ed25519', size=2048), 'do not apply to an Ed25519 key'),
    (dict(alg='HS256'), 'Unknown alg HS256'),
])
def test_resolve_spec_refuses_bad_input(kwargs, message):
    with pytest.raises(J.JwkError) as exc:
        J.resolve_spec(**kwargs)
    assert message in str(exc.value)
    assert '\n' not in str(exc.value)


@pytest.mark.parametrize('kwargs, expected', [
    ({}, {'type': 'RSA', 'size': 2048, 'curve': None, 'alg': 'RS256'}),
    (dict(alg='ES384'), {'type': 'EC', 'size': 384, 'curve': 'P-384', 'alg': 'ES384'}),
    (dict(key_type='EC'), {'type': 'EC', 'size': 256, 'curve': 'P-256', 'alg': 'ES256'}),
    (dict(alg='EdDSA'), {'type': 'Ed25519', 'size': 256, 'curve': None, 'alg': 'EdDSA'}),
    (dict(size=4096, alg='PS256'), {'type': 'RSA', 'size': 4096, 'curve': None, 'alg': 'PS256'}),
])
def test_resolve_spec_defaults(kwargs, expected):
    assert J.resolve_spec(**kwargs) == expected


def test_load_private_classifies_errors():
    key = J.generate(J.resolve_spec(alg='ES256'))
    enc = J.private_pem(key, 'secret')
    assert b'ENCRYPTED PRIVATE KEY' in enc
    assert J.thumbprint(J.load_private(enc, 'secret')[0]) == J.thumbprint(key)
    for data, passphrase, kind, text in [
        (enc, 'wrong', 'passphrase', 'wrong passphrase'),
        (enc, None, 'passphrase', 'no passphrase was given'),
        (J.private_pem(key), 'secret', 'passphrase', 'not encrypted but a passphrase was given'),
        (b'-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n', None, 'broken', 'corrupted'),
        (b'', None, 'broken', 'not a valid PEM'),
    ]:
        with pytest.raises(J.KeyReadError) as exc:
            J.load_private(data, passphrase, '/k.pem')
        assert exc.value.kind == kind
        assert text in str(exc.value) and 'secret' not in str(exc.value)


def test_traditional_format_is_detected():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    trad = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption())
    assert J.load_private(trad)[1] == {'pkcs8': False, 'encrypted': False}


def test_fingerprints_are_colon_hex_sha256_of_spki():
    key = J.generate(J.resolve_spec(alg='EdDSA'))
    fps = J.fingerprints(key)
    assert len(fps['sha256'].split(':')) == 32 and len(fps['sha1'].split(':')) == 20


# --- atomic_file --------------------------------------------------------------------------

def test_write_atomic_sets_mode_before_data(tmp_path, monkeypatch):
    target = tmp_path / 'k.pem'
    seen = []
    real_write = os.write

    def spy_write(fd, data):
        seen.append(stat.S_IMODE(os.fstat(fd).st_mode))
        return real_write(fd, data)

    monkeypatch.setattr(atomic_file.os, 'write', spy_write)
    atomic_file.write_atomic(str(target), b'secret', 0o600)
    assert seen and all(mode == 0o600 for mode in seen)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_bytes() == b'secret'
    assert os.listdir(str(tmp_path)) == ['k.pem']


@pytest.mark.parametrize('fail_at', ['rename', 'write', 'fsync'])
def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch, fail_at):
    target = tmp_path / 'k.pem'
    target.write_bytes(b'old key')
    os.chmod(str(target), 0o600)

    def boom(*args, **kwargs):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(atomic_file.os, fail_at, boom)
    with pytest.raises(atomic_file.AtomicFileError) as exc:
        atomic_file.write_atomic(str(target), b'new key', 0o600)
    assert 'No space left on device' in str(exc.value) and 'unchanged' in str(exc.value)
    assert target.read_bytes() == b'old key'
    assert os.listdir(str(tmp_path)) == ['k.pem']  # no temporary file left behind


def test_backup_keeps_previous_content(tmp_path):
    target = tmp_path / 'k.pem'
    target.write_bytes(b'v1')
    backup = atomic_file.write_atomic(str(target), b'v2', 0o644, backup=True)
    assert backup and pathlib.Path(backup).read_bytes() == b'v1'
    assert target.read_bytes() == b'v2'
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_parse_mode_and_owner():
    assert atomic_file.parse_mode('0640') == 0o640
    assert atomic_file.parse_mode(384) == 0o600
    with pytest.raises(atomic_file.AtomicFileError):
        atomic_file.parse_mode('u=rw')
    with pytest.raises(atomic_file.AtomicFileError) as exc:
        atomic_file.resolve_owner('no-such-user-xyz')
    assert 'Unknown user' in str(exc.value)
    assert atomic_file.resolve_owner('0') == 0 and atomic_file.resolve_group(None) == -1


def test_check_writable_dir(tmp_path):
    with pytest.raises(atomic_file.AtomicFileError) as exc:
        atomic_file.check_writable_dir(str(tmp_path / 'missing' / 'k.pem'))
    assert 'does not exist' in str(exc.value)
    atomic_file.check_writable_dir(str(tmp_path / 'k.pem'))


# --- key set planner ------------------------------------------------------------------------

def _keyset(tmp_path, **params):
    base = {'path': str(tmp_path / 'ks'), 'key': None, 'kid': None, 'passphrase': None, 'alg': None,
            'state': 'present', 'role': 'next', 'retire_expired': False, 'overlap': 100, 'now': 1000,
            'retired_files': 'keep_public', 'owner': None, 'group': None}
    base.update(params)
    plan = J.plan_keyset(base)
    if plan.changed:
        plan.apply()
    return plan


def _write_key(tmp_path, name, alg='RS256'):
    key = J.generate(J.resolve_spec(alg=alg))
    path = tmp_path / name
    path.write_bytes(J.private_pem(key))
    return str(path), J.thumbprint(key)


def test_keyset_rotation(tmp_path):
    a, kid_a = _write_key(tmp_path, 'a.pem')
    b, kid_b = _write_key(tmp_path, 'b.pem', 'ES256')
    assert _keyset(tmp_path, key=a, role='active').after['active'] == kid_a
    assert not _keyset(tmp_path, key=a, role='active').changed
    plan = _keyset(tmp_path, key=b, role='next', now=1010)
    assert plan.result()['published'] == [kid_a, kid_b]
    plan = _keyset(tmp_path, key=b, role='active', now=1020)
    assert plan.after['keys'][kid_a] == dict(plan.after['keys'][kid_a], status='verify', not_after=1120)
    assert [k['kid'] for k in plan.jwks['keys']] == [kid_b, kid_a]
    assert not _keyset(tmp_path, retire_expired=True, now=1119).changed
    plan = _keyset(tmp_path, retire_expired=True, now=1120)
    assert plan.retired == [kid_a]
    ks = tmp_path / 'ks'
    jwks = json.loads((ks / 'jwks.json').read_text())
    assert [k['kid'] for k in jwks['keys']] == [kid_b]
    state = json.loads((ks / 'keyset.json').read_text())
    assert state['keys'][kid_a]['status'] == 'retired' and state['keys'][kid_a]['private_key'] is None
    assert not (ks / ('%s.pem' % kid_a)).exists() and (ks / ('%s.pub.pem' % kid_a)).exists()
    assert stat.S_IMODE((ks / ('%s.pem' % kid_b)).stat().st_mode) == 0o600
    assert not _keyset(tmp_path, retire_expired=True, now=99999).changed


def test_keyset_refusals_change_nothing(tmp_path):
    a, kid_a = _write_key(tmp_path, 'a.pem')
    _keyset(tmp_path, key=a, role='active')
    ks = tmp_path / 'ks'
    snapshot = dict((p.name, p.read_bytes()) for p in ks.iterdir())
    for params, text in [
        (dict(kid=kid_a, state='absent'), 'Refusing to retire the active key'),
        (dict(kid=kid_a, role='next'), 'is the active key and cannot become next'),
        (dict(kid='nope'), 'kid nope is not in the key set'),
        (dict(key=a, alg='ES256'), 'alg ES256 needs an EC P-256 key'),
    ]:
        with pytest.raises(J.JwkError) as exc:
            _keyset(tmp_path, **params)
        assert text in str(exc.value)
    assert dict((p.name, p.read_bytes()) for p in ks.iterdir()) == snapshot


def test_keyset_never_retires_the_last_published_key(tmp_path):
    a, kid_a = _write_key(tmp_path, 'a.pem')
    _keyset(tmp_path, key=a, role='verify')
    with pytest.raises(J.JwkError) as exc:
        _keyset(tmp_path, kid=kid_a, state='absent')
    assert 'last key' in str(exc.value)
    plan = _keyset(tmp_path, retire_expired=True, now=10 ** 9)
    assert not plan.changed and plan.jwks['keys'][0]['kid'] == kid_a and plan.warnings


def test_keyset_corrupted_state_file(tmp_path):
    ks = tmp_path / 'ks'
    ks.mkdir()
    (ks / 'keyset.json').write_text('{not json')
    with pytest.raises(J.JwkError) as exc:
        _keyset(tmp_path)
    assert 'is not valid JSON' in str(exc.value)
