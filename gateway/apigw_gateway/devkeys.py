"""Development helper: write a key-set directory with one RSA key.

    python -m apigw_gateway.devkeys DIR [--bits 2048] [--add]

Without --add, DIR gets a fresh set (jwks.json, keyset.json, one PEM pair) and the key is active.
With --add, a new key is added to an existing set and made active; the old keys stay in jwks.json
(status "verify") so tokens they signed keep verifying.  The format is the one the collection's
jwt_keyset module manages; this helper exists so tests and demos work without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .keys import public_jwk


def _write(path, data: bytes, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def new_rsa_key(directory, bits=2048):
    """Write a PEM pair named after the key's thumbprint; return (kid, entry, jwk)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    jwk = public_jwk(key.public_key(), "RS256")
    kid = jwk["kid"]
    private_name, public_name = f"{kid}.pem", f"{kid}.pub.pem"
    _write(os.path.join(directory, private_name), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), 0o600)
    _write(os.path.join(directory, public_name), key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    entry = {"alg": "RS256", "status": "active", "not_after": None,
             "private_key": private_name, "public_key": public_name}
    return kid, entry, jwk


def write_keyset(directory, bits=2048, add=False):
    """Create (or, with add=True, rotate) a key set; return the new active kid."""
    os.makedirs(directory, exist_ok=True)
    jwks, keyset = {"keys": []}, {"active": None, "keys": {}}
    if add:
        with open(os.path.join(directory, "jwks.json")) as handle:
            jwks = json.load(handle)
        with open(os.path.join(directory, "keyset.json")) as handle:
            keyset = json.load(handle)
        for entry in keyset["keys"].values():
            if entry.get("status") == "active":
                entry["status"] = "verify"
                entry["not_after"] = int(time.time()) + 7 * 86400
    kid, entry, jwk = new_rsa_key(directory, bits)
    jwks["keys"].append(jwk)
    keyset["keys"][kid] = entry
    keyset["active"] = kid
    # jwks first: a reader that sees the new keyset.json must find the new key published
    _write(os.path.join(directory, "jwks.json"), (json.dumps(jwks, indent=2) + "\n").encode())
    _write(os.path.join(directory, "keyset.json"), (json.dumps(keyset, indent=2) + "\n").encode())
    return kid


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--bits", type=int, default=2048)
    parser.add_argument("--add", action="store_true", help="add a new active key to an existing set")
    args = parser.parse_args(argv)
    if not args.add and os.path.exists(os.path.join(args.directory, "keyset.json")):
        print(f"{args.directory} already holds a key set; use --add to rotate", file=sys.stderr)
        return 1
    print(write_keyset(args.directory, args.bits, args.add))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
