"""Print the RFC 7638 thumbprint of a PEM public key, computed without apigw.ops code (PyJWT + hashlib)."""
import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

with open(sys.argv[1], 'rb') as handle:
    key = load_pem_public_key(handle.read())
for algorithm in (RSAAlgorithm, ECAlgorithm, OKPAlgorithm):
    try:
        jwk = json.loads(algorithm.to_jwk(key))
        break
    except Exception:  # pylint: disable=broad-except
        continue
members = {'RSA': ('e', 'kty', 'n'), 'EC': ('crv', 'kty', 'x', 'y'), 'OKP': ('crv', 'kty', 'x')}[jwk['kty']]
canonical = json.dumps(dict((m, jwk[m]) for m in members), separators=(',', ':'), sort_keys=True)
print(base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b'=').decode())
