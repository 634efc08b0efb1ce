// The client of issue 20's rotation race, for bench/rotation_race.py (not a test; it reports, it does not judge).
//
//   node rotation_race.mjs BASE_URL USERNAME PASSWORD [--concurrency 3] [--min-loops 1000] [--seconds S]
//
// Each of --concurrency loops: log in -> verify the access token with jose against BASE_URL/.well-known/jwks.json
// (createRemoteJWKSet, no cooldown, no cache: every verification fetches the JWKS) -> refresh -> verify the new
// access token the same way -> GET /reports/:id with it. Every request goes over a new connection, so each can land on
// any worker of the replica. It stops when stdin closes (or after --seconds) once --min-loops loops are done, and
// prints one JSON object: loops, failures (by step and code, with the first samples), the kids tokens were signed
// with, the kid lists the JWKS was seen with.
import http from 'node:http';
import https from 'node:https';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';

const [base, username, password, ...rest] = process.argv.slice(2);
const option = (name, fallback) => {
  const at = rest.indexOf(`--${name}`);
  return at >= 0 ? Number(rest[at + 1]) : fallback;
};
const concurrency = option('concurrency', 3);
const minLoops = option('min-loops', 1000);
const seconds = option('seconds', 0);
if (!base || !username || !password) {
  console.error('usage: node rotation_race.mjs BASE_URL USERNAME PASSWORD [--concurrency N] [--min-loops N] [--seconds S]');
  process.exit(2);
}
const url = new URL(base);
const transport = url.protocol === 'https:' ? https : http;
const agent = new transport.Agent({ keepAlive: false }); // a new connection (and so any worker) for every request

const stats = { loops: 0, failures: 0, byStep: {}, samples: [], signedKids: {}, jwksSeen: {} };
let stopping = false;
process.stdin.on('end', () => { stopping = true; });
process.stdin.resume();
if (seconds > 0) setTimeout(() => { stopping = true; }, seconds * 1000);

function request(method, path, body, token) {
  return new Promise((resolve, reject) => {
    const data = body ? JSON.stringify(body) : undefined;
    const headers = { ...(data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const req = transport.request(new URL(path, url), { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('timeout')));
    req.end(data);
  });
}

// the JWKS the verifier fetches, seen through its own fetch: record which kid lists were served
const jwksUrl = new URL('/.well-known/jwks.json', url);
const JWKS = createRemoteJWKSet(jwksUrl, { cooldownDuration: 0, cacheMaxAge: 0, agent, timeoutDuration: 10000 });

async function verify(token) {
  const kid = decodeProtectedHeader(token).kid;
  stats.signedKids[kid] = (stats.signedKids[kid] || 0) + 1;
  await jwtVerify(token, JWKS);
  return true;
}

function fail(step, code, detail) {
  stats.failures += 1;
  const key = `${step}:${code}`;
  stats.byStep[key] = (stats.byStep[key] || 0) + 1;
  if (stats.samples.length < 10) stats.samples.push({ step, code, detail: String(detail).slice(0, 300), at: new Date().toISOString() });
}

async function step(name, fn) {
  try {
    return await fn();
  } catch (err) {
    fail(name, err.code || err.name || 'error', err.message);
    return undefined;
  }
}

async function loop(worker) {
  let n = 0;
  while (!stopping || stats.loops < minLoops) {
    n += 1;
    stats.loops += 1;
    const login = await step('login', async () => {
      const res = await request('POST', '/auth/login', { username, password });
      if (res.status !== 200) throw Object.assign(new Error(res.body), { code: `HTTP_${res.status}` });
      return JSON.parse(res.body);
    });
    if (!login) continue;
    if (!(await step('verify_login', () => verify(login.accessToken)))) continue;
    const refreshed = await step('refresh', async () => {
      const res = await request('POST', '/auth/refresh', { refreshToken: login.refreshToken });
      if (res.status !== 200) throw Object.assign(new Error(res.body), { code: `HTTP_${res.status}` });
      return JSON.parse(res.body);
    });
    if (!refreshed) continue;
    await step('verify_refresh', () => verify(refreshed.accessToken));
    await step('report', async () => {
      const res = await request('GET', `/reports/r-${worker}-${n}`, undefined, refreshed.accessToken);
      if (res.status !== 200) throw Object.assign(new Error(res.body), { code: `HTTP_${res.status}` });
    });
  }
}

// what the JWKS lists, sampled once a second over a new connection (for the report, not part of the loops)
const sampler = setInterval(async () => {
  try {
    const res = await request('GET', '/.well-known/jwks.json');
    const kids = JSON.parse(res.body).keys.map((k) => k.kid).join(',');
    stats.jwksSeen[kids] = (stats.jwksSeen[kids] || 0) + 1;
  } catch { /* a missed sample is not a loop failure */ }
}, 1000);

const started = Date.now();
await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
clearInterval(sampler);
process.stdin.pause();
stats.seconds = Math.round((Date.now() - started) / 100) / 10;
stats.concurrency = concurrency;
console.log(JSON.stringify(stats));
process.exit(0);
