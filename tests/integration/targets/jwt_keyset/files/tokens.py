"""Sign a JWT with PyJWT, or verify one against a jwks.json with PyJWT (no apigw.ops code).

    tokens.py sign <private.pem> <alg> <kid>      -> prints the token
    tokens.py verify <jwks.json> <token>          -> prints "valid" or "invalid: <reason>"
"""
import json
import sys
import time

import jwt
from cryptography.hazmat.primitives.serialization import load_pem_private_key


def sign(pem_path, alg, kid):
    with open(pem_path, 'rb') as handle:
        key = load_pem_private_key(handle.read(), password=None)
    now = int(time.time())
    print(jwt.encode({'sub': 'user-123', 'iss': 'apigw-tests', 'iat': now, 'exp': now + 900}, key,
                     algorithm=alg, headers={'kid': kid}))


def verify(jwks_path, token):
    with open(jwks_path) as handle:
        keys = jwt.PyJWKSet.from_dict(json.load(handle))
    kid = jwt.get_unverified_header(token).get('kid')
    try:
        key = keys[kid]
        jwt.decode(token, key.key, algorithms=[key.algorithm_name], issuer='apigw-tests')
    except (KeyError, jwt.PyJWTError) as exc:
        print('invalid: %s' % (exc or exc.__class__.__name__))
        return
    print('valid')


if __name__ == '__main__':
    {'sign': sign, 'verify': verify}[sys.argv[1]](*sys.argv[2:])
