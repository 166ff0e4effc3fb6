#!/usr/bin/env node
// A local OAuth2 token endpoint for `private_key_jwt` client authentication (RFC 7523
// client assertions, as NHS England's application-restricted APIs and SMART Backend
// Services use), and a tiny protected FHIR resource behind it. The bridge's tests
// point its FHIR client here; the assertion is checked by panva's `jose`, a JOSE
// library independent of the Rust signer.
//
// Token endpoint: POST /token (application/x-www-form-urlencoded) with
//   grant_type=client_credentials,
//   client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer,
//   client_assertion=<JWT>, optional scope.
// The assertion must: be signed (RS512 or ES384) by a key of the JWKS under its `kid`,
// have typ JWT, iss == sub == the client id, aud == this endpoint's URL, exp present
// and at most 300 s after iat (and after now), a jti not seen before (replays are
// refused). Answer: {access_token, token_type: "Bearer", expires_in} or
// 400 {"error": "invalid_client"} (400 {"error": "unsupported_grant_type"} /
// "invalid_request" for a malformed request).
//
// Protected resource: GET /fhir/metadata answers a CapabilityStatement, GET /fhir/{type}/{id}
// a minimal resource, each only with a currently valid issued token (else 401).
//
// GET /stats: {tokens_issued, refusals: {reason: n}, resource: {ok, unauthorized},
//   assertions: [{jti, kid, alg, iat, exp}]} (accepted assertions, oldest first).
// POST /_test/revoke: forgets every issued token (the next FHIR request gets 401).
//
// Usage:
//   node token-endpoint.mjs [--port 0] [--host 127.0.0.1] [--client-id ips-bridge]
//        [--expires-in 300] (--jwks jwks.json | --key KID=ALG:public.pem ...)
//   node token-endpoint.mjs --print-jwks --key KID=ALG:public.pem ...
// --print-jwks writes the public JWKS for those keys to stdout and exits: that JWKS is
// what to register with an authorisation server. ALG is RS512 or ES384.
// Contract: the FIRST line on stdout is the base URL, e.g. http://127.0.0.1:43123 ;
// the token URL is {base}/token and the FHIR base {base}/fhir. Logs go to stderr.

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, decodeProtectedHeader, exportJWK, importSPKI, jwtVerify } from 'jose';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ALGORITHMS = ['RS512', 'ES384'];
const MAX_ASSERTION_LIFETIME = 300;
const log = (msg) => process.stderr.write(`[token-endpoint] ${msg}\n`);

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'client-id': { type: 'string', default: 'ips-bridge' },
    'expires-in': { type: 'string', default: '300' },
    jwks: { type: 'string' },
    key: { type: 'string', multiple: true, default: [] },
    'print-jwks': { type: 'boolean', default: false },
  },
});

/** Public JWKs for `--key KID=ALG:path.pem` options (PEM SubjectPublicKeyInfo). */
async function jwksFromPem(specs) {
  const keys = [];
  for (const spec of specs) {
    const m = /^([^=]+)=(RS512|ES384):(.+)$/.exec(spec);
    if (!m) throw new Error(`--key ${spec}: expected KID=RS512:path.pem or KID=ES384:path.pem`);
    const [, kid, alg, path] = m;
    const key = await importSPKI(readFileSync(path, 'utf8'), alg, { extractable: true });
    keys.push({ ...(await exportJWK(key)), kid, alg, use: 'sig' });
  }
  return { keys };
}

const jwks = args.jwks ? JSON.parse(readFileSync(args.jwks, 'utf8')) : await jwksFromPem(args.key);
if (args['print-jwks']) {
  process.stdout.write(`${JSON.stringify(jwks, null, 2)}\n`);
  process.exit(0);
}
if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) {
  log('no keys: give --jwks FILE or --key KID=ALG:public.pem');
  process.exit(2);
}
for (const k of jwks.keys) {
  if (!k.kid) {
    log('every JWK needs a kid');
    process.exit(2);
  }
  if ('d' in k) {
    log(`JWK ${k.kid} holds a private key; give public keys only`);
    process.exit(2);
  }
}
const keySet = createLocalJWKSet(jwks);
const knownKids = new Set(jwks.keys.map((k) => k.kid));
const clientId = args['client-id'];
const expiresIn = Number(args['expires-in']);

const stats = {
  tokens_issued: 0,
  refusals: {},
  resource: { ok: 0, unauthorized: 0 },
  assertions: [],
};
/** jti -> exp of every accepted assertion (kept until exp, then pruned). */
const seenJti = new Map();
/** access_token -> expiry (ms since epoch). */
const issued = new Map();
let tokenUrl = '';

function refuse(res, reason, detail, error = 'invalid_client') {
  stats.refusals[reason] = (stats.refusals[reason] ?? 0) + 1;
  log(`refused (${reason}): ${detail}`);
  json(res, 400, { error, error_description: reason });
}

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** The refusal reason for a jose error. */
function reasonOf(e) {
  switch (e.code) {
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return 'alg';
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return 'no_matching_key';
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return `claim_${e.claim}`;
    default:
      return 'malformed';
  }
}

async function token(req, res) {
  let body = '';
  for await (const chunk of req) body += chunk;
  const form = new URLSearchParams(body);
  if (form.get('grant_type') !== 'client_credentials') {
    return refuse(res, 'grant_type', `grant_type ${form.get('grant_type')}`, 'unsupported_grant_type');
  }
  if (form.get('client_assertion_type') !== JWT_BEARER || !form.get('client_assertion')) {
    return refuse(res, 'assertion_type', 'no jwt-bearer client assertion', 'invalid_request');
  }
  if (form.has('client_secret')) {
    return refuse(res, 'client_secret', 'a client secret alongside the assertion', 'invalid_request');
  }
  const assertion = form.get('client_assertion');
  let header;
  try {
    header = decodeProtectedHeader(assertion);
  } catch (e) {
    return refuse(res, 'malformed', e.message);
  }
  if (!knownKids.has(header.kid)) {
    return refuse(res, 'unknown_kid', `kid ${JSON.stringify(header.kid)}`);
  }
  let payload;
  try {
    ({ payload } = await jwtVerify(assertion, keySet, {
      algorithms: ALGORITHMS,
      typ: 'JWT',
      issuer: clientId,
      subject: clientId,
      audience: tokenUrl,
      requiredClaims: ['exp', 'iat', 'jti'],
      clockTolerance: 5,
    }));
  } catch (e) {
    return refuse(res, reasonOf(e), `${e.code}: ${e.message}`);
  }
  const now = Math.floor(Date.now() / 1000);
  if (payload.exp - payload.iat > MAX_ASSERTION_LIFETIME || payload.exp > now + MAX_ASSERTION_LIFETIME + 5) {
    return refuse(res, 'lifetime', `exp ${payload.exp} - iat ${payload.iat} > ${MAX_ASSERTION_LIFETIME}`);
  }
  for (const [jti, exp] of seenJti) if (exp + 5 < now) seenJti.delete(jti);
  if (typeof payload.jti !== 'string' || payload.jti === '') {
    return refuse(res, 'claim_jti', 'jti is not a string');
  }
  if (seenJti.has(payload.jti)) {
    return refuse(res, 'replay', `jti ${payload.jti} seen before`);
  }
  seenJti.set(payload.jti, payload.exp);
  const accessToken = randomBytes(24).toString('base64url');
  issued.set(accessToken, Date.now() + expiresIn * 1000);
  stats.tokens_issued += 1;
  stats.assertions.push({ jti: payload.jti, kid: header.kid, alg: header.alg, iat: payload.iat, exp: payload.exp });
  log(`issued token ${stats.tokens_issued} (kid ${header.kid}, ${header.alg}, scope ${form.get('scope') ?? '-'})`);
  json(res, 200, { access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn });
}

function fhir(req, res, path) {
  const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
  const until = m ? issued.get(m[1]) : undefined;
  if (until === undefined || until <= Date.now()) {
    stats.resource.unauthorized += 1;
    return json(res, 401, {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'login', diagnostics: 'no valid access token' }],
    }, { 'www-authenticate': 'Bearer error="invalid_token"' });
  }
  stats.resource.ok += 1;
  if (path === 'metadata') {
    return json(res, 200, { resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1' });
  }
  const r = /^([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})$/.exec(path);
  if (!r) return json(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found' }] });
  return json(res, 200, { resourceType: r[1], id: r[2], meta: { versionId: '1' } }, { etag: 'W/"1"' });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://local');
  if (req.method === 'POST' && url.pathname === '/token') {
    token(req, res).catch((e) => {
      log(`token request failed: ${e.stack}`);
      json(res, 500, { error: 'server_error' });
    });
  } else if (req.method === 'GET' && url.pathname.startsWith('/fhir/')) {
    fhir(req, res, url.pathname.slice('/fhir/'.length));
  } else if (req.method === 'GET' && url.pathname === '/stats') {
    json(res, 200, stats);
  } else if (req.method === 'POST' && url.pathname === '/_test/revoke') {
    issued.clear();
    json(res, 200, { revoked: true });
  } else {
    json(res, 404, { error: 'not_found' });
  }
});

server.listen(Number(args.port), args.host, () => {
  const { port } = server.address();
  const base = `http://${args.host}:${port}`;
  tokenUrl = `${base}/token`;
  process.stdout.write(`${base}\n`);
  log(`token URL ${tokenUrl}, client ${clientId}, keys ${[...knownKids].join(', ')}, expires_in ${expiresIn}s`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => server.close(() => process.exit(0)));
