// Verify JWTs against a JWKS with Node's `jose` (https://github.com/panva/jose), code nobody here wrote.
// Usage: node verify_jwks.mjs <jwks.json> <cases.json>
//   cases.json: [{"name": "...", "token": "<JWT>"}, ...]
// Prints [{"name", "verified": true|false, "kid", "alg", "error"}] as JSON on stdout.
// Run as an ES module: this file is copied next to the node_modules holding jose (see setup.sh).
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, jwtVerify } from 'jose';

const [jwksPath, casesPath] = process.argv.slice(2);
const jwks = JSON.parse(readFileSync(jwksPath, 'utf8'));
const cases = JSON.parse(readFileSync(casesPath, 'utf8'));
const keys = createLocalJWKSet(jwks);
const results = [];
for (const c of cases) {
  try {
    const { protectedHeader } = await jwtVerify(c.token, keys, { issuer: 'apigw-tests' });
    results.push({ name: c.name, verified: true, kid: protectedHeader.kid, alg: protectedHeader.alg });
  } catch (err) {
    results.push({ name: c.name, verified: false, error: err.code || String(err.message) });
  }
}
process.stdout.write(JSON.stringify(results) + '\n');
