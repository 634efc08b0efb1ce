# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Interoperability of jwt_keypair / jwt_keyset with code nobody here wrote.

* keys are generated and published by the real modules (ansible-playbook);
* tokens are signed with PyJWT using each generated private key;
* Node's ``jose`` verifies them against the generated jwks.json;
* ``openssl pkey -check`` accepts every private key;
* every kid equals an RFC 7638 thumbprint computed here from PyJWT's own JWK export.

Run:  python -m pytest tests/jose   (needs node + npm, openssl, PyJWT, ansible-core)
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

jwt = pytest.importorskip('jwt')
from cryptography.hazmat.primitives import serialization  # pylint: disable=wrong-import-position

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KEYS = [  # name, module options, alg
    ('rsa2048', {'alg': 'RS256'}, 'RS256'),
    ('rsa3072-ps256', {'size': 3072, 'alg': 'PS256'}, 'PS256'),
    ('ec-p256', {'alg': 'ES256'}, 'ES256'),
    ('ec-p384', {'type': 'EC', 'curve': 'P-384'}, 'ES384'),
    ('ec-p521', {'alg': 'ES512'}, 'ES512'),
    ('ed25519', {'type': 'Ed25519'}, 'EdDSA'),
]


def _need(tool):
    if shutil.which(tool) is None:
        pytest.skip('%s is not installed' % tool)


@pytest.fixture(scope='module')
def jose_dir():
    _need('node')
    _need('npm')
    out = subprocess.run(['sh', os.path.join(HERE, 'setup.sh')], check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    """Run the modules once: one key pair per type, all published in one key set."""
    _need('openssl')
    work = tmp_path_factory.mktemp('interop')
    coll = work / 'collections' / 'ansible_collections' / 'apigw'
    coll.mkdir(parents=True)
    os.symlink(REPO, str(coll / 'ops'))
    tasks = []
    for index, (name, opts, alg) in enumerate(KEYS):
        tasks.append({'name': 'key %s' % name, 'register': 'k_%d' % index,
                      'apigw.ops.jwt_keypair': dict(path=str(work / ('%s.pem' % name)), **opts)})
        tasks.append({'name': 'publish %s' % name, 'apigw.ops.jwt_keyset': {
            'path': str(work / 'keyset'), 'key': str(work / ('%s.pem' % name)), 'alg': alg,
            'role': 'active' if index == 0 else 'next'}})
    tasks.append({'name': 'dump', 'ansible.builtin.copy': {
        'dest': str(work / 'results.json'),
        'content': '{{ [%s] | to_json }}' % ', '.join('k_%d' % i for i in range(len(KEYS)))}})
    playbook = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
    (work / 'play.yml').write_text(json.dumps(playbook))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(work / 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING='0')
    playbook_bin = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
    run = subprocess.run([playbook_bin, '-i', 'localhost,', '-c', 'local', str(work / 'play.yml')],
                         env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:]
    results = json.loads((work / 'results.json').read_text())
    return work, dict((name, res) for (name, _o, _a), res in zip(KEYS, results))


def _independent_kid(public_key):
    """RFC 7638 thumbprint from PyJWT's JWK export (not our code)."""
    for alg in (jwt.algorithms.RSAAlgorithm, jwt.algorithms.ECAlgorithm, jwt.algorithms.OKPAlgorithm):
        try:
            jwk = json.loads(alg.to_jwk(public_key))
            break
        except Exception:  # pylint: disable=broad-except
            continue
    members = {'RSA': ('e', 'kty', 'n'), 'EC': ('crv', 'kty', 'x', 'y'), 'OKP': ('crv', 'kty', 'x')}[jwk['kty']]
    canonical = json.dumps(dict((m, jwk[m]) for m in members), separators=(',', ':'), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b'=').decode()


def _private(path):
    with open(path, 'rb') as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


def _token(key, alg, kid, sub):
    now = int(time.time())
    return jwt.encode({'sub': sub, 'iss': 'apigw-tests', 'iat': now, 'exp': now + 300}, key,
                      algorithm=alg, headers={'kid': kid})


def _jose_verify(jose_dir, jwks_path, cases, tmp_path):
    cases_path = tmp_path / 'cases.json'
    cases_path.write_text(json.dumps(cases))
    out = subprocess.run(['node', os.path.join(jose_dir, 'verify_jwks.mjs'), str(jwks_path), str(cases_path)],
                         capture_output=True, text=True, check=True)
    return dict((r['name'], r) for r in json.loads(out.stdout))


def test_kid_is_the_rfc7638_thumbprint(generated):
    work, results = generated
    for name, _opts, alg in KEYS:
        key = _private(str(work / ('%s.pem' % name)))
        assert results[name]['kid'] == _independent_kid(key.public_key()), name
        assert results[name]['alg'] == alg


def test_openssl_accepts_every_private_key(generated):
    work, results = generated
    for name, _opts, _alg in KEYS:
        for path in (work / ('%s.pem' % name), work / 'keyset' / ('%s.pem' % results[name]['kid'])):
            run = subprocess.run(['openssl', 'pkey', '-check', '-noout', '-in', str(path)],
                                 capture_output=True, text=True, check=False)
            assert run.returncode == 0 and 'valid' in (run.stdout + run.stderr).lower(), (name, run.stderr)
            assert oct(os.stat(str(path)).st_mode & 0o777) == '0o600'
        pub = work / ('%s.pub.pem' % name)
        run = subprocess.run(['openssl', 'pkey', '-pubin', '-in', str(pub), '-noout'],
                             capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr


def test_pyjwt_tokens_verify_with_node_jose(generated, jose_dir, tmp_path):
    work, results = generated
    jwks_path = work / 'keyset' / 'jwks.json'
    jwks = json.loads(jwks_path.read_text())
    assert sorted(k['kid'] for k in jwks['keys']) == sorted(r['kid'] for r in results.values())
    cases = []
    for name, _opts, alg in KEYS:
        key = _private(str(work / ('%s.pem' % name)))
        cases.append({'name': name, 'token': _token(key, alg, results[name]['kid'], name)})
    # negative controls: a key that is not published, and a token whose kid points at another key
    from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=import-outside-toplevel
    other = ec.generate_private_key(ec.SECP256R1())
    cases.append({'name': 'unpublished', 'token': _token(other, 'ES256', _independent_kid(other.public_key()), 'x')})
    cases.append({'name': 'wrong-kid', 'token': _token(other, 'ES256', results['ec-p256']['kid'], 'x')})
    verdicts = _jose_verify(jose_dir, jwks_path, cases, tmp_path)
    for name, _opts, alg in KEYS:
        assert verdicts[name]['verified'], verdicts[name]
        assert verdicts[name]['kid'] == results[name]['kid'] and verdicts[name]['alg'] == alg
    assert not verdicts['unpublished']['verified'] and not verdicts['wrong-kid']['verified']
