# -*- coding: utf-8 -*-
# Copyright (c) apigw.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""JWT signing keys: generation, loading, JWK / RFC 7638 thumbprints and key sets.

Private to the collection. Needs the ``cryptography`` library (guarded: check
``HAS_CRYPTOGRAPHY`` and report ``MISSING_CRYPTOGRAPHY`` before calling in).

Two planners are defined here, used by the thin modules:

* :func:`plan_keypair` for ``jwt_keypair`` (one private/public PEM pair);
* :func:`plan_keyset` for ``jwt_keyset`` (the key-set directory read by the
  gateway: ``keyset.json``, ``jwks.json`` and ``<kid>.pem``/``<kid>.pub.pem``).

A plan only reads. ``plan.changed`` tells whether ``plan.apply()`` would write
anything, so check mode runs exactly the same code as a real run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import base64
import copy
import hashlib
import json
import os
import sys
import time

from ansible_collections.apigw.ops.plugins.module_utils.atomic_file import (
    AtomicFileError,
    attributes_differ,
    check_writable_dir,
    file_mode,
    parse_mode,
    read_bytes,
    remove_file,
    resolve_group,
    resolve_owner,
    set_attributes,
    write_atomic,
)

try:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
except ImportError as _exc:  # pragma: no cover - exercised by the sanity import test
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = str(_exc)
else:
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None

MISSING_CRYPTOGRAPHY = (
    "The Python library 'cryptography' is required on the managed host (interpreter %s): "
    "install it with 'pip install cryptography' or the OS package python3-cryptography." % sys.executable)

# JWS algorithm -> (key type, curve or None)
ALGORITHMS = {
    'RS256': ('RSA', None), 'RS384': ('RSA', None), 'RS512': ('RSA', None),
    'PS256': ('RSA', None), 'PS384': ('RSA', None), 'PS512': ('RSA', None),
    'ES256': ('EC', 'P-256'), 'ES384': ('EC', 'P-384'), 'ES512': ('EC', 'P-521'),
    'EdDSA': ('Ed25519', None),
}
KEY_TYPES = ('RSA', 'EC', 'Ed25519')
RSA_SIZES = (2048, 3072, 4096)
RSA_MIN_SIZE = 2048
CURVES = ('P-256', 'P-384', 'P-521')
_CURVE_ALG = {'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512'}
_CURVE_BYTES = {'P-256': 32, 'P-384': 48, 'P-521': 66}
_CURVE_BY_OPENSSL = {'secp256r1': 'P-256', 'secp384r1': 'P-384', 'secp521r1': 'P-521'}

REGENERATE_CHOICES = ('never', 'fail', 'partial_idempotence', 'full_idempotence', 'always')
STATUSES = ('active', 'next', 'verify', 'retired')
KEYSET_FILE = 'keyset.json'
JWKS_FILE = 'jwks.json'
# refresh-token lifetime (7 days) + JWKS cache time (1 hour)
DEFAULT_OVERLAP = 7 * 24 * 3600 + 3600


class JwkError(Exception):
    """Bad input or unusable key; ``str(exc)`` is a one-line message for fail_json."""


class KeyReadError(JwkError):
    """An existing private key cannot be read; ``kind`` is 'broken' or 'passphrase'."""

    def __init__(self, message, kind):
        super(KeyReadError, self).__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------
# Key basics
# --------------------------------------------------------------------------

def b64url(data):
    """base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def _int_bytes(value, length=None):
    if length is None:
        length = max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(length, 'big')


def _curve_name(key):
    name = key.curve.name
    if name not in _CURVE_BY_OPENSSL:
        raise JwkError("Unsupported EC curve %s: use P-256, P-384 or P-521." % name)
    return _CURVE_BY_OPENSSL[name]


def _public(key):
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        return key.public_key()
    return key


def describe(key):
    """{'type', 'size', 'curve'} of a private or public key."""
    key = _public(key)
    if isinstance(key, rsa.RSAPublicKey):
        return {'type': 'RSA', 'size': key.key_size, 'curve': None}
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {'type': 'EC', 'size': key.key_size, 'curve': _curve_name(key)}
    if isinstance(key, ed25519.Ed25519PublicKey):
        return {'type': 'Ed25519', 'size': 256, 'curve': None}
    raise JwkError("Unsupported key type %s: use RSA, EC or Ed25519." % key.__class__.__name__)


def describe_text(info):
    """'RSA 2048', 'EC P-256', 'Ed25519'."""
    if info['type'] == 'RSA':
        return 'RSA %s' % info['size']
    if info['type'] == 'EC':
        return 'EC %s' % info['curve']
    return info['type']


def default_alg(key):
    """The JWS algorithm a key is used for when none is given."""
    info = describe(key)
    if info['type'] == 'RSA':
        return 'RS256'
    if info['type'] == 'EC':
        return _CURVE_ALG[info['curve']]
    return 'EdDSA'


def alg_mismatch(alg, info):
    """Why ``alg`` cannot be used with a key described by ``info`` (None if it can)."""
    if alg not in ALGORITHMS:
        return "Unknown alg %s: use one of %s." % (alg, ', '.join(sorted(ALGORITHMS)))
    ktype, curve = ALGORITHMS[alg]
    if ktype != info['type'] or (curve and curve != info['curve']):
        return "alg %s needs %s, not %s." % (
            alg,
            ('an EC %s key' % curve) if curve else ('an %s key' % ktype if ktype != 'Ed25519' else 'an Ed25519 key'),
            describe_text(info))
    return None


def public_jwk(key, alg=None, with_kid=True):
    """Public JWK (RFC 7517) of a key: only public members, plus kid/alg/use."""
    key = _public(key)
    info = describe(key)
    if info['type'] == 'RSA':
        numbers = key.public_numbers()
        jwk = {'kty': 'RSA', 'n': b64url(_int_bytes(numbers.n)), 'e': b64url(_int_bytes(numbers.e))}
    elif info['type'] == 'EC':
        numbers = key.public_numbers()
        size = _CURVE_BYTES[info['curve']]
        jwk = {'kty': 'EC', 'crv': info['curve'],
               'x': b64url(_int_bytes(numbers.x, size)), 'y': b64url(_int_bytes(numbers.y, size))}
    else:
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        jwk = {'kty': 'OKP', 'crv': 'Ed25519', 'x': b64url(raw)}
    if with_kid:
        jwk['kid'] = thumbprint(jwk)
        jwk['alg'] = alg or default_alg(key)
        jwk['use'] = 'sig'
    return jwk


_REQUIRED_MEMBERS = {'RSA': ('e', 'kty', 'n'), 'EC': ('crv', 'kty', 'x', 'y'), 'OKP': ('crv', 'kty', 'x')}


def thumbprint(jwk_or_key):
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a JWK dict or a key object."""
    jwk = jwk_or_key if isinstance(jwk_or_key, dict) else public_jwk(jwk_or_key, with_kid=False)
    members = _REQUIRED_MEMBERS.get(jwk.get('kty'))
    if members is None:
        raise JwkError("Cannot compute a thumbprint for kty %r." % jwk.get('kty'))
    canonical = json.dumps(dict((name, jwk[name]) for name in members),
                           sort_keys=True, separators=(',', ':'), ensure_ascii=False)
    return b64url(hashlib.sha256(canonical.encode('utf-8')).digest())


def fingerprints(key):
    """SHA-256 / SHA-1 fingerprints (colon hex) of the DER SubjectPublicKeyInfo."""
    der = _public(key).public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    result = {}
    for name in ('sha256', 'sha1'):
        digest = hashlib.new(name, der).hexdigest()
        result[name] = ':'.join(digest[i:i + 2] for i in range(0, len(digest), 2))
    return result


def public_pem(key):
    return _public(key).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_pem(key, passphrase=None):
    """PKCS#8 PEM, encrypted with the best available cipher when a passphrase is given."""
    if passphrase:
        encryption = serialization.BestAvailableEncryption(_to_bytes(passphrase))
    else:
        encryption = serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _to_bytes(value):
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode('utf-8')


def resolve_spec(key_type=None, size=None, curve=None, alg=None):
    """Validate the requested key; fill defaults. Returns {'type','size','curve','alg'}."""
    if alg is not None and alg not in ALGORITHMS:
        raise JwkError("Unknown alg %s: use one of %s." % (alg, ', '.join(sorted(ALGORITHMS))))
    if key_type is not None and key_type not in KEY_TYPES:
        raise JwkError("Unknown key type %s: use RSA, EC or Ed25519." % key_type)
    if curve is not None and curve not in CURVES:
        raise JwkError("Unknown curve %s: use P-256, P-384 or P-521." % curve)
    if key_type is None:
        key_type = ALGORITHMS[alg][0] if alg else ('EC' if curve else 'RSA')
    if key_type == 'RSA':
        size = RSA_MIN_SIZE if size is None else size
        if size < RSA_MIN_SIZE:
            raise JwkError("RSA key size %s is refused: use at least %d bits (2048, 3072 or 4096)."
                           % (size, RSA_MIN_SIZE))
        if size not in RSA_SIZES:
            raise JwkError("RSA key size %s is not supported: use 2048, 3072 or 4096." % size)
        curve_out = None
        if curve is not None:
            raise JwkError("curve=%s is only for type=EC, not RSA." % curve)
    elif key_type == 'EC':
        curve_out = curve or (ALGORITHMS[alg][1] if alg and ALGORITHMS[alg][0] == 'EC' else 'P-256')
        if size is not None and size != int(curve_out[2:]):
            raise JwkError("size=%s does not apply to an EC key: choose the curve instead." % size)
        size = int(curve_out[2:])
    else:
        if size is not None or curve is not None:
            raise JwkError("size and curve do not apply to an Ed25519 key: remove them.")
        size, curve_out = 256, None
    spec = {'type': key_type, 'size': size, 'curve': curve_out}
    if alg is None:
        alg = 'RS256' if key_type == 'RSA' else (_CURVE_ALG[curve_out] if key_type == 'EC' else 'EdDSA')
    problem = alg_mismatch(alg, spec)
    if problem:
        raise JwkError("%s Use a matching type/curve or another alg." % problem)
    spec['alg'] = alg
    return spec


def generate(spec):
    """A new private key for a resolved spec."""
    if spec['type'] == 'RSA':
        return rsa.generate_private_key(public_exponent=65537, key_size=spec['size'])
    if spec['type'] == 'EC':
        curve = {'P-256': ec.SECP256R1, 'P-384': ec.SECP384R1, 'P-521': ec.SECP521R1}[spec['curve']]()
        return ec.generate_private_key(curve)
    return ed25519.Ed25519PrivateKey.generate()


def load_private(data, passphrase=None, path='private key'):
    """Parse a PEM private key. Returns (key, info) where info has 'pkcs8' and 'encrypted'.

    Raises KeyReadError(kind='passphrase') for a missing/wrong/unexpected
    passphrase and KeyReadError(kind='broken') for anything unparsable.
    """
    passphrase = _to_bytes(passphrase)
    text = data or b''
    encrypted = b'ENCRYPTED' in text
    try:
        key = serialization.load_pem_private_key(text, password=passphrase)
    except TypeError:
        if encrypted:
            raise KeyReadError("Private key %s is encrypted and no passphrase was given: set passphrase." % path,
                               'passphrase')
        raise KeyReadError("Private key %s is not encrypted but a passphrase was given: remove passphrase "
                           "(or regenerate=full_idempotence to replace the key with an encrypted one)." % path,
                           'passphrase')
    except ValueError:
        if encrypted and passphrase:
            raise KeyReadError("Cannot decrypt private key %s: wrong passphrase." % path, 'passphrase')
        raise KeyReadError("Cannot read private key %s: not a valid PEM private key (corrupted or wrong file)." % path,
                           'broken')
    except UnsupportedAlgorithm:
        raise KeyReadError("Cannot read private key %s: unsupported key algorithm." % path, 'broken')
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        raise KeyReadError("Private key %s is a %s key: only RSA, EC and Ed25519 keys sign JWTs." % (
            path, key.__class__.__name__.replace('PrivateKey', '').lstrip('_')), 'broken')
    pkcs8 = b'-----BEGIN PRIVATE KEY-----' in text or b'-----BEGIN ENCRYPTED PRIVATE KEY-----' in text
    return key, {'pkcs8': pkcs8, 'encrypted': encrypted}


def load_public_any(data, passphrase=None, what='key'):
    """Public key from a PEM public key, certificate-less SPKI, or private key."""
    data = _to_bytes(data)
    if b'PRIVATE KEY' in data:
        return _public(load_private(data, passphrase, what)[0])
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise JwkError("Cannot read %s: not a valid PEM public or private key." % what)
    describe(key)
    return key


# --------------------------------------------------------------------------
# jwt_keypair
# --------------------------------------------------------------------------

def default_public_path(path):
    """jwt.pem -> jwt.pub.pem; anything else -> <path>.pub."""
    if path.endswith('.pem'):
        return path[:-4] + '.pub.pem'
    return path + '.pub'


def _summary(key, alg, path, public_path):
    if key is None:
        return {'path': path, 'public_key_path': public_path, 'kid': None}
    info = describe(key)
    return {'path': path, 'public_key_path': public_path, 'kid': thumbprint(key), 'alg': alg,
            'type': info['type'], 'size': info['size'], 'curve': info['curve']}


class KeyPairPlan(object):
    """Read-only plan for one key pair; ``apply()`` performs it."""

    def __init__(self, params):
        self.params = params
        self.path = params['path']
        self.public_path = params.get('public_key_path') or default_public_path(self.path)
        self.state = params.get('state') or 'present'
        self.passphrase = params.get('passphrase')
        self.mode = parse_mode(params.get('mode'), 0o600)
        self.public_mode = parse_mode(params.get('public_key_mode'), 0o644)
        self.uid = resolve_owner(params.get('owner'))
        self.gid = resolve_group(params.get('group'))
        self.backup = bool(params.get('backup'))
        self.actions = []          # human-readable, in order
        self.key = None            # the key after the run (None for absent / unknown yet)
        self.existing = None       # the key before the run
        self.generate_spec = None  # set when a new key will be generated
        self.write_private = False
        self.write_public = False
        self.fix_private_attrs = False
        self.fix_public_attrs = False
        self.remove = []
        self.backups = []
        self.warnings = []
        self.spec = None
        self._plan()

    # -- planning ---------------------------------------------------------
    def _plan(self):
        if os.path.isdir(self.path):
            raise JwkError("path %s is a directory: give the private key file name." % self.path)
        if self.state == 'absent':
            for name in (self.path, self.public_path):
                if os.path.lexists(name):
                    self.remove.append(name)
                    self.actions.append('remove %s' % name)
            if self.remove:
                check_writable_dir(self.path)
            data = read_bytes(self.path)
            if data is not None:
                try:
                    self.existing = load_private(data, self.passphrase, self.path)[0]
                except JwkError:
                    self.existing = None
            return

        p = self.params
        self.spec = resolve_spec(p.get('type'), p.get('size'), p.get('curve'), p.get('alg'))
        regenerate = p.get('regenerate') or 'fail'
        data = read_bytes(self.path)
        if data is None:
            self._generate('create a new %s key' % describe_text(self.spec))
        elif regenerate == 'always':
            try:
                self.existing = load_private(data, self.passphrase, self.path)[0]
            except JwkError:
                self.existing = None
            self._generate('regenerate the key (regenerate=always)')
        else:
            try:
                key, fmt = load_private(data, self.passphrase, self.path)
            except KeyReadError as exc:
                if regenerate == 'full_idempotence':
                    self._generate('replace the unreadable key (regenerate=full_idempotence)')
                else:
                    raise JwkError("%s Nothing was changed; regenerate=full_idempotence or always would replace it."
                                   % exc)
            else:
                self.existing = key
                self._check_existing(key, fmt, regenerate)
        self._plan_public()
        self._plan_attributes()
        if self.write_private or self.write_public or self.fix_private_attrs or self.fix_public_attrs:
            check_writable_dir(self.path)

    def _generate(self, why):
        self.generate_spec = self.spec
        self.write_private = True
        self.actions.append(why)

    def _check_existing(self, key, fmt, regenerate):
        info = describe(key)
        wanted = self.spec
        problems = []
        if info['type'] == 'RSA' and info['size'] < RSA_MIN_SIZE:
            problems.append('is RSA %s, below the %d-bit minimum' % (info['size'], RSA_MIN_SIZE))
        elif info['type'] != wanted['type'] or info['curve'] != wanted['curve'] or \
                (wanted['type'] == 'RSA' and info['size'] != wanted['size']):
            problems.append('is %s but %s was requested' % (describe_text(info), describe_text(wanted)))
        if fmt['encrypted'] != bool(self.passphrase):
            problems.append('is %sencrypted but a passphrase was %sgiven' % (
                '' if fmt['encrypted'] else 'not ', '' if self.passphrase else 'not '))
        if not problems:
            self.key = key
            if not fmt['pkcs8']:
                self.write_private = True
                self.actions.append('convert %s to PKCS#8 (same key)' % self.path)
            return
        text = "Existing key %s %s" % (self.path, '; '.join(problems))
        if regenerate in ('partial_idempotence', 'full_idempotence'):
            self._generate('regenerate: %s' % text[len('Existing key '):])
            return
        usable = alg_mismatch(wanted['alg'], info) is None and not (
            info['type'] == 'RSA' and info['size'] < RSA_MIN_SIZE)
        if regenerate == 'never' and usable and not (fmt['encrypted'] and not self.passphrase):
            self.key = key
            self.warnings.append("%s; kept because regenerate=never." % text)
            if not fmt['pkcs8']:
                self.write_private = True
                self.actions.append('convert %s to PKCS#8 (same key)' % self.path)
            return
        raise JwkError("%s (regenerate=%s): nothing was changed; set regenerate=partial_idempotence to replace it, "
                       "or change the options to match." % (text, regenerate))

    def _plan_public(self):
        if self.generate_spec is not None:
            self.write_public = True
            self.actions.append('write public key %s' % self.public_path)
            return
        current = read_bytes(self.public_path)
        if current != public_pem(self.key):
            self.write_public = True
            self.actions.append('%s public key %s' % ('write' if current is None else 'rewrite', self.public_path))

    def _plan_attributes(self):
        if not self.write_private:
            differ = attributes_differ(self.path, self.mode, self.uid, self.gid)
            if differ:
                self.fix_private_attrs = True
                self.actions.append('set %s of %s' % ('/'.join(differ), self.path))
        if not self.write_public:
            differ = attributes_differ(self.public_path, self.public_mode, self.uid, self.gid)
            if differ:
                self.fix_public_attrs = True
                self.actions.append('set %s of %s' % ('/'.join(differ), self.public_path))

    @property
    def changed(self):
        return bool(self.actions)

    # -- applying ---------------------------------------------------------
    def apply(self):
        """Perform the plan. Private key first, then public (derived, repaired by a rerun)."""
        try:
            if self.state == 'absent':
                for name in self.remove:
                    backup = remove_file(name, self.backup)
                    if backup:
                        self.backups.append((name, backup))
                return
            if self.generate_spec is not None:
                self.key = generate(self.generate_spec)
            if self.write_private:
                backup = write_atomic(self.path, private_pem(self.key, self.passphrase),
                                      self.mode, self.uid, self.gid, self.backup)
                if backup:
                    self.backups.append((self.path, backup))
            elif self.fix_private_attrs:
                set_attributes(self.path, self.mode, self.uid, self.gid)
            if self.write_public:
                backup = write_atomic(self.public_path, public_pem(self.key),
                                      self.public_mode, self.uid, self.gid, self.backup)
                if backup:
                    self.backups.append((self.public_path, backup))
            elif self.fix_public_attrs:
                set_attributes(self.public_path, self.public_mode, self.uid, self.gid)
        except AtomicFileError as exc:
            raise JwkError(str(exc))

    # -- reporting --------------------------------------------------------
    def diff(self):
        alg = self.spec['alg'] if self.spec else None
        before = _summary(self.existing, alg, self.path, self.public_path)
        before['exists'] = os.path.exists(self.path)
        before['mode'] = file_mode(self.path)
        before['public_key_mode'] = file_mode(self.public_path)
        if self.state == 'absent':
            after = {'path': self.path, 'public_key_path': self.public_path, 'exists': False, 'kid': None}
        elif self.key is None:
            after = dict(_summary(None, alg, self.path, self.public_path),
                         kid='(new key)', alg=alg, type=self.spec['type'], size=self.spec['size'],
                         curve=self.spec['curve'])
        else:
            after = _summary(self.key, alg, self.path, self.public_path)
        if self.state != 'absent':
            after.update(exists=True, mode='%04o' % self.mode, public_key_mode='%04o' % self.public_mode)
        return {'before': before, 'after': after}

    def result(self, return_content=False):
        res = {'private_key_path': self.path, 'public_key_path': self.public_path, 'actions': self.actions,
               'kid': None, 'alg': None, 'type': None, 'size': None, 'curve': None,
               'public_key': None, 'jwk': None, 'fingerprints': None}
        for name, backup in self.backups:
            res['backup_file' if name == self.path else 'public_key_backup_file'] = backup
        if self.state == 'absent' or self.key is None:
            if self.spec:
                res.update(alg=self.spec['alg'], type=self.spec['type'], size=self.spec['size'],
                           curve=self.spec['curve'])
            return res
        info = describe(self.key)
        res.update(kid=thumbprint(self.key), alg=self.spec['alg'], type=info['type'], size=info['size'],
                   curve=info['curve'], public_key=public_pem(self.key).decode('ascii'),
                   jwk=public_jwk(self.key, self.spec['alg']), fingerprints=fingerprints(self.key))
        if return_content:
            data = read_bytes(self.path)
            res['private_key'] = data.decode('ascii') if data else None
        return res


def plan_keypair(params):
    try:
        return KeyPairPlan(params)
    except AtomicFileError as exc:
        raise JwkError(str(exc))


# --------------------------------------------------------------------------
# jwt_keyset
# --------------------------------------------------------------------------

def dump_json(obj):
    return (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode('utf-8')


def load_keyset(directory):
    """keyset.json of a directory ({'active': None, 'keys': {}} when absent), validated."""
    path = os.path.join(directory, KEYSET_FILE)
    data = read_bytes(path)
    if data is None:
        return {'active': None, 'keys': {}}
    try:
        state = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise JwkError("%s is not valid JSON (%s): fix or remove it." % (path, str(exc).splitlines()[0]))
    if not isinstance(state, dict) or not isinstance(state.get('keys'), dict):
        raise JwkError("%s is not a key set: expected {\"active\": kid, \"keys\": {kid: {...}}}." % path)
    for kid, entry in state['keys'].items():
        if not isinstance(entry, dict) or entry.get('status') not in STATUSES:
            raise JwkError("%s: key %s has no valid status (one of %s)." % (path, kid, ', '.join(STATUSES)))
    active = state.get('active')
    if active is not None and state['keys'].get(active, {}).get('status') != 'active':
        raise JwkError("%s: active key %s is not in the set with status active." % (path, active))
    return {'active': active, 'keys': state['keys']}


_STATUS_ORDER = {'active': 0, 'next': 1, 'verify': 2, 'retired': 3}


def published(state):
    """kids listed in jwks.json: active first, then next, then verify (sorted)."""
    kids = [kid for kid, entry in state['keys'].items() if entry['status'] != 'retired']
    return sorted(kids, key=lambda kid: (_STATUS_ORDER[state['keys'][kid]['status']], kid))


class KeySetPlan(object):
    """Read-only plan for a key-set directory; ``apply()`` performs it."""

    def __init__(self, params):
        self.params = params
        self.dir = params['path']
        self.now = int(params['now']) if params.get('now') is not None else int(time.time())
        self.overlap = params.get('overlap')
        if self.overlap is None:
            self.overlap = DEFAULT_OVERLAP
        if self.overlap < 0:
            raise JwkError("overlap must be >= 0 seconds, got %s." % self.overlap)
        self.uid = resolve_owner(params.get('owner'))
        self.gid = resolve_group(params.get('group'))
        self.retired_files = params.get('retired_files') or 'keep_public'
        self.actions = []
        self.warnings = []
        self.retired = []
        self.writes = []       # (path, bytes, mode)
        self.chmods = []       # (path, mode)
        self.deletes = []      # paths
        self.create_dir = False
        self.pubkeys = {}      # kid -> public key object
        self.kid = None
        self._plan()

    def _file(self, name):
        return os.path.join(self.dir, name)

    def _plan(self):
        if os.path.exists(self.dir) and not os.path.isdir(self.dir):
            raise JwkError("Key-set path %s exists and is not a directory." % self.dir)
        if not os.path.isdir(self.dir):
            parent = os.path.dirname(os.path.abspath(self.dir))
            if not os.path.isdir(parent):
                raise JwkError("Cannot create key-set directory %s: parent %s does not exist." % (self.dir, parent))
            self.create_dir = True
            self.actions.append('create directory %s' % self.dir)
        self.before = load_keyset(self.dir) if not self.create_dir else {'active': None, 'keys': {}}
        self.after = copy.deepcopy(self.before)
        p = self.params
        state = p.get('state') or 'present'
        if p.get('key'):
            self.kid = self._plan_add(p['key'], p.get('passphrase'), p.get('alg'))
        elif p.get('kid'):
            self.kid = p['kid']
            if self.kid not in self.after['keys']:
                if state == 'absent':
                    self.kid = None
                else:
                    raise JwkError("kid %s is not in the key set %s: add it with key=<private key file>."
                                   % (p['kid'], self.dir))
            elif p.get('alg') and p['alg'] != self.after['keys'][self.kid].get('alg'):
                raise JwkError("alg can only be set together with key=, not for kid %s." % self.kid)
        if self.kid is not None:
            if state == 'absent':
                self._retire(self.kid, explicit=True)
            else:
                self._set_role(self.kid, p.get('role') or 'next')
        if p.get('retire_expired'):
            for kid in published(self.after):
                entry = self.after['keys'][kid]
                if (entry['status'] == 'verify' and entry.get('not_after') is not None
                        and entry['not_after'] <= self.now):
                    self._retire(kid, explicit=False)
        self._plan_retired_files()
        self._plan_documents()
        if (self.writes or self.chmods or self.deletes) and not self.create_dir:
            check_writable_dir(self._file(JWKS_FILE))
        if not self.after['active'] and published(self.after):
            self.warnings.append("Key set %s has no active key: promote one with role=active so the gateway can sign."
                                 % self.dir)

    def _plan_add(self, key_path, passphrase, alg):
        data = read_bytes(key_path)
        if data is None:
            raise JwkError("Key file %s does not exist: create it with apigw.ops.jwt_keypair first." % key_path)
        key = load_private(data, passphrase, key_path)[0]
        info = describe(key)
        if info['type'] == 'RSA' and info['size'] < RSA_MIN_SIZE:
            raise JwkError("Key %s is RSA %s, below the %d-bit minimum: refused."
                           % (key_path, info['size'], RSA_MIN_SIZE))
        alg = alg or default_alg(key)
        problem = alg_mismatch(alg, info)
        if problem:
            raise JwkError("Key %s: %s" % (key_path, problem))
        kid = thumbprint(key)
        self.pubkeys[kid] = key.public_key()
        entry = self.after['keys'].get(kid)
        if entry is None:
            entry = {'alg': alg, 'status': None, 'not_after': None,
                     'private_key': '%s.pem' % kid, 'public_key': '%s.pub.pem' % kid}
            self.after['keys'][kid] = entry
        elif entry.get('alg') != alg:
            if entry['status'] == 'active':
                raise JwkError("Key %s is active with alg %s: changing its alg to %s would break signing; "
                               "add it as a new key instead." % (kid, entry.get('alg'), alg))
            self.actions.append('set alg of %s to %s' % (kid, alg))
            entry['alg'] = alg
        if entry['status'] == 'retired' and (self.params.get('state') or 'present') == 'absent':
            return kid
        # the files of a (re)added key: copy the source bytes verbatim
        if not entry.get('private_key'):
            entry['private_key'] = '%s.pem' % kid
        if not entry.get('public_key'):
            entry['public_key'] = '%s.pub.pem' % kid
        if (self.params.get('state') or 'present') != 'absent':
            self._ensure_file(entry['private_key'], data, 0o600)
            self._ensure_file(entry['public_key'], public_pem(key), 0o644)
        return kid

    def _ensure_file(self, name, data, mode):
        path = self._file(name)
        current = None if self.create_dir else read_bytes(path)
        if current != data:
            self.writes.append((path, data, mode))
            self.actions.append('write %s' % path)
        else:
            differ = attributes_differ(path, mode, self.uid, self.gid)
            if differ:
                self.chmods.append((path, mode))
                self.actions.append('set %s of %s' % ('/'.join(differ), path))

    def _set_role(self, kid, role):
        entry = self.after['keys'][kid]
        old_status = entry['status']
        if role == 'active':
            if self.after['active'] == kid:
                return
            name = entry.get('private_key')
            if not name or (not os.path.exists(self._file(name)) and
                            not any(w[0] == self._file(name) for w in self.writes)):
                raise JwkError("Key %s has no private key in %s and cannot sign: add it with key=<private key file>."
                               % (kid, self.dir))
            previous = self.after['active']
            if previous:
                prev = self.after['keys'][previous]
                prev['status'] = 'verify'
                prev['not_after'] = self.now + self.overlap
                self.actions.append('demote %s to verify until %d' % (previous, prev['not_after']))
                if old_status != 'next':
                    self.warnings.append(
                        "Key %s was promoted without being published as next first: clients holding a cached JWKS "
                        "may reject its tokens until their cache expires." % kid)
            entry['status'] = 'active'
            entry['not_after'] = None
            self.after['active'] = kid
            self.actions.append('%s %s as active' % ('add' if old_status is None else 'promote', kid))
            return
        if self.after['active'] == kid:
            raise JwkError("Key %s is the active key and cannot become %s: promote another key to active first."
                           % (kid, role))
        if old_status == role:
            return
        entry['status'] = role
        entry['not_after'] = (self.now + self.overlap) if role == 'verify' else None
        self.actions.append('%s %s as %s' % ('add' if old_status is None else 'set', kid, role))

    def _retire(self, kid, explicit):
        entry = self.after['keys'][kid]
        if entry['status'] == 'retired':
            return
        if entry['status'] is None:
            # state=absent with a key never added: nothing to retire
            del self.after['keys'][kid]
            self.writes = [w for w in self.writes if kid not in os.path.basename(w[0])]
            self.actions = [a for a in self.actions if kid not in a]
            return
        if self.after['active'] == kid:
            raise JwkError("Refusing to retire the active key %s: promote another key to active first." % kid)
        if len(published(self.after)) <= 1:
            if explicit:
                raise JwkError("Refusing to retire %s: it is the last key in %s and jwks.json would be empty."
                               % (kid, self.dir))
            self.warnings.append("Key %s is past not_after but is the last published key: kept." % kid)
            return
        entry['status'] = 'retired'
        self.retired.append(kid)
        self.actions.append('retire %s' % kid)

    def _plan_retired_files(self):
        for _kid, entry in sorted(self.after['keys'].items()):
            if entry['status'] != 'retired':
                continue
            drop = []
            if self.retired_files in ('keep_public', 'delete'):
                drop.append('private_key')
            if self.retired_files == 'delete':
                drop.append('public_key')
            for member in drop:
                name = entry.get(member)
                if not name:
                    continue
                entry[member] = None
                path = self._file(name)
                if os.path.lexists(path):
                    self.deletes.append(path)
                    self.actions.append('delete %s' % path)

    def _public_of(self, kid):
        if kid in self.pubkeys:
            return self.pubkeys[kid]
        entry = self.after['keys'][kid]
        for member in ('public_key', 'private_key'):
            name = entry.get(member)
            data = read_bytes(self._file(name)) if name and not self.create_dir else None
            if data is not None:
                try:
                    key = load_public_any(data, self.params.get('passphrase') if member == 'private_key' else None,
                                          self._file(name))
                except JwkError:
                    continue
                if thumbprint(key) != kid:
                    raise JwkError("%s holds key %s, not %s: the key set is inconsistent."
                                   % (self._file(name), thumbprint(key), kid))
                self.pubkeys[kid] = key
                if member == 'private_key':
                    self._ensure_file(entry['public_key'] or '%s.pub.pem' % kid, public_pem(key), 0o644)
                    entry['public_key'] = entry['public_key'] or '%s.pub.pem' % kid
                return key
        raise JwkError("Cannot find the public key of %s in %s: re-add it with key=<private key file>."
                       % (kid, self.dir))

    def _plan_documents(self):
        keys = []
        for kid in published(self.after):
            entry = self.after['keys'][kid]
            jwk = public_jwk(self._public_of(kid), entry['alg'])
            keys.append(jwk)
            if (entry.get('private_key') and not self.create_dir and os.path.exists(self._file(entry['private_key']))
                    and not any(w[0] == self._file(entry['private_key']) for w in self.writes)):
                differ = attributes_differ(self._file(entry['private_key']), 0o600, self.uid, self.gid)
                if differ and (self._file(entry['private_key']), 0o600) not in self.chmods:
                    self.chmods.append((self._file(entry['private_key']), 0o600))
                    self.actions.append('set %s of %s' % ('/'.join(differ), self._file(entry['private_key'])))
        self.jwks = {'keys': keys}
        for name, doc in ((JWKS_FILE, self.jwks), (KEYSET_FILE, self.after)):
            path = self._file(name)
            data = dump_json(doc)
            current = None if self.create_dir else read_bytes(path)
            if current != data:
                self.writes.append((path, data, 0o644))
                self.actions.append('%s %s' % ('write' if current is None else 'update', path))
            else:
                differ = attributes_differ(path, 0o644, self.uid, self.gid)
                if differ:
                    self.chmods.append((path, 0o644))
                    self.actions.append('set %s of %s' % ('/'.join(differ), path))

    @property
    def changed(self):
        return bool(self.actions)

    def apply(self):
        """Key files first, then jwks.json, then keyset.json, then deletions of retired files."""
        try:
            if self.create_dir:
                try:
                    os.mkdir(self.dir, 0o755)
                    if self.uid != -1 or self.gid != -1:
                        os.chown(self.dir, self.uid, self.gid)
                except OSError as exc:
                    raise AtomicFileError("Cannot create key-set directory %s: %s." % (self.dir, exc.strerror))
            order = sorted(self.writes, key=lambda w: (os.path.basename(w[0]) == KEYSET_FILE,
                                                       os.path.basename(w[0]) == JWKS_FILE))
            for path, data, mode in order:
                write_atomic(path, data, mode, self.uid, self.gid)
            for path, mode in self.chmods:
                set_attributes(path, mode, self.uid, self.gid)
            for path in self.deletes:
                remove_file(path)
        except AtomicFileError as exc:
            raise JwkError(str(exc))

    def _view(self, state):
        return {'active': state['active'],
                'keys': dict((kid, {'status': e['status'], 'alg': e.get('alg'), 'not_after': e.get('not_after')})
                             for kid, e in sorted(state['keys'].items()))}

    def diff(self):
        return {'before': self._view(self.before), 'after': self._view(self.after)}

    def result(self):
        return {'directory': self.dir, 'kid': self.kid, 'active': self.after['active'],
                'keyset': self.after, 'jwks': self.jwks, 'published': published(self.after),
                'retired': self.retired, 'actions': self.actions, 'now': self.now}


def plan_keyset(params):
    try:
        return KeySetPlan(params)
    except AtomicFileError as exc:
        raise JwkError(str(exc))
