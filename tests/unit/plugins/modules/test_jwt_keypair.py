# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the jwt_keypair module (run through main() with patch_module_args)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import os
import pathlib
import stat

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.modules import jwt_keypair


def run(capsys, check_mode=False, diff=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    if diff:
        args['_ansible_diff'] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        jwt_keypair.main()
    out = capsys.readouterr().out
    return json.loads(out), out


def test_create_check_apply_check_apply(tmp_path, capsys):
    path = str(tmp_path / 'k.pem')
    check1 = run(capsys, check_mode=True, path=path)[0]
    assert check1['changed'] and check1['kid'] is None and not os.path.exists(path)
    apply1 = run(capsys, path=path)[0]
    assert apply1['changed'] and apply1['kid'] and apply1['alg'] == 'RS256' and apply1['size'] == 2048
    check2 = run(capsys, check_mode=True, path=path)[0]
    apply2 = run(capsys, path=path)[0]
    assert not check2['changed'] and not apply2['changed']
    assert apply1['kid'] == check2['kid'] == apply2['kid'] == apply2['jwk']['kid']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(str(tmp_path / 'k.pub.pem')).st_mode) == 0o644
    assert 'private_key' not in apply2


def test_passphrase_never_in_output_or_diff(tmp_path, capsys):
    path = str(tmp_path / 'k.pem')
    res, out = run(capsys, diff=True, path=path, alg='EdDSA', passphrase='Sup3rS3cret!', return_content=True)
    assert res['changed'] and 'Sup3rS3cret!' not in out
    assert res['private_key'].startswith('-----BEGIN ENCRYPTED PRIVATE KEY-----')
    assert 'PRIVATE' not in json.dumps(res['diff'])
    res, out = run(capsys, path=path, alg='EdDSA', passphrase='wrong-one')
    assert res['failed'] and res['msg'] == 'Cannot decrypt private key %s: wrong passphrase. Nothing was changed; ' \
        'regenerate=full_idempotence or always would replace it.' % path
    assert 'wrong-one' not in out


def test_diff_shows_metadata_only(tmp_path, capsys):
    path = str(tmp_path / 'k.pem')
    run(capsys, path=path, alg='ES256')
    res = run(capsys, check_mode=True, diff=True, path=path, alg='ES384', regenerate='partial_idempotence')[0]
    assert res['changed']
    assert res['diff']['before']['curve'] == 'P-256' and res['diff']['after']['curve'] == 'P-384'
    assert res['diff']['after']['kid'] == '(new key)'


@pytest.mark.parametrize('args, text', [
    (dict(size=1024), 'RSA key size 1024 is refused'),
    (dict(type='EC', alg='RS256'), 'alg RS256 needs an RSA key'),
    (dict(curve='P-192'), 'value of curve must be one of'),
])
def test_bad_input_creates_nothing(tmp_path, capsys, args, text):
    res = run(capsys, path=str(tmp_path / 'k.pem'), **args)[0]
    assert res['failed'] and text in res['msg'] and '\n' not in res['msg']
    assert os.listdir(str(tmp_path)) == []


def test_corrupted_and_mismatched_existing_key(tmp_path, capsys):
    path = tmp_path / 'k.pem'
    path.write_bytes(b'-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n')
    res = run(capsys, path=str(path))[0]
    assert res['failed'] and 'corrupted' in res['msg']
    res = run(capsys, path=str(path), regenerate='partial_idempotence')[0]
    assert res['failed']
    assert path.read_bytes().startswith(b'-----BEGIN PRIVATE KEY-----\nAAAA')
    res = run(capsys, path=str(path), regenerate='full_idempotence', backup=True)[0]
    assert res['changed'] and pathlib.Path(res['backup_file']).read_bytes().endswith(
        b'AAAA\n-----END PRIVATE KEY-----\n')
    res = run(capsys, path=str(path), type='Ed25519')[0]
    assert res['failed'] and 'is RSA 2048 but Ed25519 was requested (regenerate=fail)' in res['msg']
    res = run(capsys, path=str(path), size=3072, regenerate='never')[0]
    assert not res['changed'] and res['size'] == 2048


def test_interrupted_write_leaves_old_key(tmp_path, capsys, monkeypatch):
    path = str(tmp_path / 'k.pem')
    first = run(capsys, path=path)[0]
    before = pathlib.Path(path).read_bytes()

    def boom(src, dst):
        raise OSError(5, 'Input/output error')

    monkeypatch.setattr(atomic_file.os, 'rename', boom)
    res = run(capsys, path=path, regenerate='always')[0]
    assert res['failed'] and res['msg'] == 'Cannot write %s: Input/output error; the previous file is unchanged.' % path
    assert pathlib.Path(path).read_bytes() == before
    assert sorted(os.listdir(str(tmp_path))) == ['k.pem', 'k.pub.pem']
    monkeypatch.undo()
    again = run(capsys, path=path)[0]
    assert not again['changed'] and again['kid'] == first['kid']


def test_mode_drift_is_repaired(tmp_path, capsys):
    path = str(tmp_path / 'k.pem')
    run(capsys, path=path)
    os.chmod(path, 0o644)
    res = run(capsys, check_mode=True, path=path)[0]
    assert res['changed'] and res['actions'] == ['set mode of %s' % path]
    run(capsys, path=path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_absent(tmp_path, capsys):
    path = str(tmp_path / 'k.pem')
    run(capsys, path=path)
    assert run(capsys, check_mode=True, path=path, state='absent')[0]['changed']
    assert run(capsys, path=path, state='absent')[0]['changed']
    assert os.listdir(str(tmp_path)) == []
    assert not run(capsys, path=path, state='absent')[0]['changed']


def test_missing_cryptography_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jwt_keypair, 'HAS_CRYPTOGRAPHY', False)
    res = run(capsys, path=str(tmp_path / 'k.pem'))[0]
    assert res['failed'] and 'pip install cryptography' in res['msg'] and '\n' not in res['msg']


def test_existing_weak_or_foreign_key_is_reported(tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=import-outside-toplevel
    path = tmp_path / 'k.pem'
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path.write_bytes(weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                        serialization.NoEncryption()))
    before = path.read_bytes()
    for regenerate in ('fail', 'never'):
        res = run(capsys, path=str(path), regenerate=regenerate)[0]
        assert res['failed'] and 'is RSA 1024, below the 2048-bit minimum' in res['msg'], res
    assert path.read_bytes() == before and not (tmp_path / 'k.pub.pem').exists()
    res = run(capsys, path=str(path), regenerate='partial_idempotence')[0]
    assert res['changed'] and res['size'] == 2048


def test_traditional_pem_is_converted_keeping_the_kid(tmp_path, capsys):
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    path = tmp_path / 'k.pem'
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    os.chmod(str(path), 0o600)
    res = run(capsys, path=str(path), alg='ES256')[0]
    assert res['changed'] and 'convert %s to PKCS#8 (same key)' % path in res['actions']
    assert path.read_bytes().startswith(b'-----BEGIN PRIVATE KEY-----')
    again = run(capsys, path=str(path), alg='ES256')[0]
    assert not again['changed'] and again['kid'] == res['kid']
