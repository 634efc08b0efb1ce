# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the jwt_keyset module (run through main() with patch_module_args)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
import os
import pathlib

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.apigw.ops.plugins.module_utils import atomic_file
from ansible_collections.apigw.ops.plugins.module_utils import jwk as J
from ansible_collections.apigw.ops.plugins.modules import jwt_keyset


def run(capsys, check_mode=False, **args):
    if check_mode:
        args['_ansible_check_mode'] = True
    args['_ansible_diff'] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        jwt_keyset.main()
    return json.loads(capsys.readouterr().out)


def _key(tmp_path, name, alg='RS256', passphrase=None):
    key = J.generate(J.resolve_spec(alg=alg))
    (tmp_path / name).write_bytes(J.private_pem(key, passphrase))
    return str(tmp_path / name), J.thumbprint(key)


def snapshot(directory):
    return dict((n, pathlib.Path(directory, n).read_bytes()) for n in sorted(os.listdir(directory)))


def test_four_ways_and_rotation(tmp_path, capsys):
    ks = str(tmp_path / 'ks')
    a, kid_a = _key(tmp_path, 'a.pem')
    b, kid_b = _key(tmp_path, 'b.pem', 'EdDSA')
    for args in (dict(key=a, role='active', now=100), dict(key=b, role='next', now=200),
                 dict(key=b, role='active', now=300), dict(retire_expired=True, now=300 + 608400)):
        check1 = run(capsys, check_mode=True, path=ks, **args)
        apply1 = run(capsys, path=ks, **args)
        check2 = run(capsys, check_mode=True, path=ks, **args)
        apply2 = run(capsys, path=ks, **args)
        assert check1['changed'] and apply1['changed'], args
        assert not check2['changed'] and not apply2['changed'], args
        assert check1['jwks'] == apply1['jwks'] == apply2['jwks']
        assert json.loads(pathlib.Path(ks, 'jwks.json').read_text()) == apply2['jwks']
        assert apply2['jwks']['keys']
    assert apply2['active'] == kid_b and apply2['published'] == [kid_b]
    assert (apply2['keyset']['keys'][kid_a]['status'] == 'retired'
            and apply2['keyset']['keys'][kid_a]['not_after'] == 300 + 608400)
    assert apply1['diff']['before']['keys'][kid_a]['status'] == 'verify'
    assert apply1['diff']['after']['keys'][kid_a]['status'] == 'retired'


@pytest.mark.parametrize('case', ['only_key', 'active', 'wrong_passphrase', 'alg_mismatch'])
def test_refusals_change_nothing(tmp_path, capsys, case):
    ks = str(tmp_path / 'ks')
    a, kid_a = _key(tmp_path, 'a.pem')
    c, _kid_c = _key(tmp_path, 'c.pem', 'ES256', passphrase='pw')
    run(capsys, path=ks, key=a, role='active')
    before = snapshot(ks)
    args = {
        'only_key': dict(kid=kid_a, state='absent'),
        'active': dict(key=a, role='verify'),
        'wrong_passphrase': dict(key=c, passphrase='nope'),
        'alg_mismatch': dict(key=c, passphrase='pw', alg='ES512'),
    }[case]
    res = run(capsys, path=ks, **args)
    assert res['failed'] and '\n' not in res['msg'] and 'nope' not in res['msg']
    assert snapshot(ks) == before


def test_interrupted_jwks_write_leaves_set_intact(tmp_path, capsys, monkeypatch):
    ks = str(tmp_path / 'ks')
    a, _kid_a = _key(tmp_path, 'a.pem')
    b, _kid_b = _key(tmp_path, 'b.pem')
    run(capsys, path=ks, key=a, role='active')
    before = snapshot(ks)
    real_rename = os.rename

    def rename(src, dst):
        if dst.endswith('jwks.json'):
            raise OSError(28, 'No space left on device')
        return real_rename(src, dst)

    monkeypatch.setattr(atomic_file.os, 'rename', rename)
    res = run(capsys, path=ks, key=b, role='next')
    assert res['failed'] and 'No space left on device' in res['msg']
    after = snapshot(ks)
    assert after['jwks.json'] == before['jwks.json'] and after['keyset.json'] == before['keyset.json']
    assert not [n for n in after if n.endswith('.tmp')]
    monkeypatch.undo()
    assert run(capsys, path=ks, key=b, role='next')['changed']
    assert not run(capsys, path=ks, key=b, role='next')['changed']
