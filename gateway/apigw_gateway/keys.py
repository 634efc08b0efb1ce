"""The signing key set: a directory with jwks.json, keyset.json and PEM files.

    jwks.json    {"keys": [{kty, kid, alg, use: "sig", ...public members}]}   -> verification keys
    keyset.json  {"active": kid, "keys": {kid: {alg, status, not_after, private_key, public_key}}}
                                                                              -> which key signs

Tokens are signed with the active key and verified by `kid` against every key in jwks.json, with
only the configured algorithms.  A KeySet is immutable; reloading builds a new one and swaps it in.
`generation` fingerprints what a key set publishes and signs with (see app.jwks for how it is reported).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography.hazmat.primitives import serialization

VERIFIED_CACHE_SIZE = 10000
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
DEFAULT_ALG = {"RSA": "RS256", "EC": {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}, "OKP": "EdDSA"}


class KeySetError(Exception):
    """The key-set directory cannot be used (message says why)."""


class InvalidToken(Exception):
    """A token was rejected; the message is safe to show to the client."""


def thumbprint(jwk: dict) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url without padding."""
    members = THUMBPRINT_MEMBERS.get(jwk.get("kty"))
    if members is None:
        raise KeySetError("unsupported key type {!r}".format(jwk.get("kty")))
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def public_jwk(public_key, alg: str) -> dict:
    """A public JWK (with kid = thumbprint) for a cryptography public key."""
    jwk = json.loads(jwt.algorithms.get_default_algorithms()[alg].to_jwk(public_key))
    jwk = {k: v for k, v in jwk.items() if k not in PRIVATE_MEMBERS and k not in ("key_ops", "kid", "alg", "use")}
    jwk.update(kid=thumbprint(jwk), alg=alg, use="sig")
    return jwk


def _default_alg(jwk):
    default = DEFAULT_ALG.get(jwk.get("kty"))
    return default.get(jwk.get("crv")) if isinstance(default, dict) else default


@dataclass(frozen=True)
class VerifyKey:
    kid: str
    alg: str
    key: object


class KeySet:
    def __init__(self, directory, active_kid, signing_alg, signing_key, verify_keys, jwks_document, warnings):
        self.directory = directory
        self.active_kid = active_kid
        self.signing_alg = signing_alg
        self.signing_key = signing_key
        self.verify_keys = verify_keys  # kid -> VerifyKey
        self.jwks_document = jwks_document  # bytes, served as is
        self.warnings = warnings
        # what this key set publishes and signs with, in 16 hex digits: equal in every worker (and every replica)
        # that loaded the same key set, so a rotation can confirm that each of them serves it
        self.generation = hashlib.sha256(jwks_document + b"\n" + active_kid.encode()).hexdigest()[:16]
        self.loaded_at = time.time()
        self._verified = {}  # token -> ((type, iss, aud), claims)

    # -- load --------------------------------------------------------------
    @classmethod
    def load(cls, directory, algorithms, passphrase=""):
        warnings = []
        jwks = _read_json(os.path.join(directory, "jwks.json"))
        keyset = _read_json(os.path.join(directory, "keyset.json"))
        if not isinstance(jwks.get("keys"), list):
            raise KeySetError(f"{directory}/jwks.json has no \"keys\" list")
        meta = keyset.get("keys") if isinstance(keyset.get("keys"), dict) else {}
        verify_keys, published = {}, []
        for entry in jwks["keys"]:
            if not isinstance(entry, dict) or not entry.get("kid"):
                raise KeySetError(f"{directory}/jwks.json holds a key without a kid")
            jwk = {k: v for k, v in entry.items() if k not in PRIVATE_MEMBERS}
            kid = jwk["kid"]
            alg = jwk.get("alg") or (meta.get(kid) or {}).get("alg") or _default_alg(jwk)
            if jwk.get("use", "sig") != "sig":
                warnings.append("key {} is not a signing key (use={}); ignored".format(kid, jwk.get("use")))
                continue
            try:
                if thumbprint(jwk) != kid:
                    warnings.append(f"key {kid}: kid is not its RFC 7638 thumbprint")
                key = jwt.PyJWK(jwk, algorithm=alg).key
            except (jwt.PyJWKError, jwt.InvalidKeyError, KeySetError, KeyError, ValueError) as exc:
                raise KeySetError(f"{directory}/jwks.json: key {kid} is not usable: {exc}") from None
            published.append(jwk)
            if alg not in algorithms:
                warnings.append(f"key {kid} uses {alg}, which JWT_ALGORITHMS does not allow; not used")
                continue
            verify_keys[kid] = VerifyKey(kid, alg, key)

        active = keyset.get("active")
        entry = meta.get(active) if active else None
        if not entry:
            raise KeySetError(f"{directory}/keyset.json: active key {active!r} is not listed under \"keys\"")
        if active not in verify_keys:
            raise KeySetError(f"{directory}: active key {active} is not a usable key in jwks.json")
        signing_alg = entry.get("alg") or verify_keys[active].alg
        if signing_alg != verify_keys[active].alg:
            raise KeySetError(f"active key {active}: alg {signing_alg} in keyset.json, "
                              f"{verify_keys[active].alg} in jwks.json")
        private_name = entry.get("private_key")
        if not private_name:
            raise KeySetError(f"{directory}/keyset.json: active key {active} has no private_key")
        signing_key = _load_private_key(os.path.join(directory, private_name), passphrase)
        if public_jwk(signing_key.public_key(), signing_alg)["kid"] != thumbprint(jwks_key(published, active)):
            raise KeySetError(f"active key {active}: {private_name} does not match the public key in jwks.json")
        document = json.dumps({"keys": published}, separators=(",", ":")).encode()
        return cls(directory, active, signing_alg, signing_key, verify_keys, document, warnings)

    # -- use ---------------------------------------------------------------
    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.signing_key, algorithm=self.signing_alg,
                          headers={"kid": self.active_kid, "typ": "JWT"})

    def verify(self, token, *, token_type, issuer, audience, leeway=0) -> dict:
        # a token whose signature and claims were already checked by this key set is only re-checked
        # for time; the cache belongs to the key set, so a reload (e.g. a retired key) empties it
        cached = self._verified.get(token)
        if cached is not None and cached[0] == (token_type, issuer, audience):
            claims, now = cached[1], time.time()
            if claims["nbf"] - leeway <= now < claims["exp"] + leeway:
                return claims
            self._verified.pop(token, None)
        claims = self._verify(token, token_type, issuer, audience, leeway)
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified[token] = ((token_type, issuer, audience), claims)
        return claims

    def _verify(self, token, token_type, issuer, audience, leeway):
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("malformed token") from None
        alg, kid = header.get("alg"), header.get("kid")
        key = self.verify_keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("unknown signing key")
        if alg != key.alg:
            raise InvalidToken("algorithm not allowed")
        try:
            claims = jwt.decode(token, key.key, algorithms=[key.alg], audience=audience, issuer=issuer,
                                leeway=leeway, options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "jti"]})
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("token not yet valid") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("invalid audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("invalid issuer") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("invalid token") from None
        if claims.get("typ") != token_type:
            raise InvalidToken("wrong token type")
        return claims

    def issue(self, *, token_type, subject, username, ttl, issuer, audience, now=None) -> tuple[str, dict]:
        now = int(time.time() if now is None else now)
        claims = {"iss": issuer, "aud": audience, "sub": subject, "username": username, "typ": token_type,
                  "iat": now, "nbf": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
        return self.sign(claims), claims


def jwks_key(published, kid):
    for jwk in published:
        if jwk["kid"] == kid:
            return jwk
    raise KeySetError(f"kid {kid} not in jwks.json")


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise KeySetError(f"{path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise KeySetError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise KeySetError(f"{path} is not a JSON object")
    return data


def _load_private_key(path, passphrase):
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise KeySetError(f"cannot read private key {path}: {exc.strerror}") from None
    try:
        return serialization.load_pem_private_key(data, password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        raise KeySetError(f"cannot load private key {path} (wrong passphrase or not PEM): {exc}") from None
