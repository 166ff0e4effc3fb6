#!/usr/bin/env node
// Local OpenID Connect provider for the staff pages' tests and demo.
//
// It wraps panva's `oidc-provider` (9.13.3, which enforces PKCE: a wrong
// code_verifier is `invalid_grant`) and adds what a test provider needs:
//   - one static confidential client (`ips-bridge`, client_secret_basic, code + PKCE S256),
//     allowed to redirect to /auth/callback on ANY loopback port (RFC 8252 §7.3),
//   - users from a JSON file, with `name`, `email` and `roles` in the ID token and userinfo,
//   - a small accessible sign-in form (username only; a password is accepted and ignored),
//     no consent screen, and a fresh sign-in on every authorization request (so a test can
//     sign in as someone else in the same browser; `--sso` keeps provider sessions instead),
//   - test-only hooks under /_test/ (see "Test-only hooks" below), separate from OIDC.
//
// Usage: node server.mjs [--port 0] [--host 127.0.0.1] [--users users.example.json]
//                        [--client-id ips-bridge] [--client-secret ips-bridge-local-secret] [--sso]
// Contract: the FIRST line on stdout is the issuer URL, e.g. http://127.0.0.1:43123 ;
// everything after that goes to stderr.

import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

// oidc-provider prints notices with console.info (stdout); keep stdout for the issuer line.
console.info = console.error;
console.log = console.error;
const { default: Provider, interactionPolicy } = await import('oidc-provider');

const HERE = dirname(fileURLToPath(import.meta.url));
const log = (msg) => process.stderr.write(`[oidc-provider] ${msg}\n`);

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    users: { type: 'string', default: join(HERE, 'users.example.json') },
    'client-id': { type: 'string', default: 'ips-bridge' },
    'client-secret': { type: 'string', default: 'ips-bridge-local-secret' },
    sso: { type: 'boolean', default: false },
  },
});

/** sub -> claims ({name, email, roles, ...}); replaced per user by PUT /_test/users/{sub}. */
const users = new Map(Object.entries(JSON.parse(readFileSync(args.users, 'utf8'))));

const SCOPES = ['openid', 'profile', 'email', 'roles'];
const CLAIMS = {
  openid: ['sub'],
  profile: ['name', 'given_name', 'family_name', 'preferred_username'],
  email: ['email', 'email_verified'],
  roles: ['roles'],
};
// The redirect paths the client may use; the port of a loopback URI is not compared.
const REDIRECT_PATHS = ['/auth/callback'];
const POST_LOGOUT_PATHS = ['/', '/signed-out'];
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

// ---------------------------------------------------------------------------
// OIDC behaviour
// ---------------------------------------------------------------------------

/** True if `value` is http://<loopback>:<any port><one of paths>, with no query or fragment. */
function loopbackUriAllowed(value, paths) {
  const url = URL.parse(value);
  return Boolean(url)
    && url.protocol === 'http:'
    && LOOPBACK_HOSTS.has(url.hostname)
    && !url.search && !url.hash && !value.includes('#')
    && paths.includes(url.pathname);
}

function findAccount(_ctx, sub) {
  if (!users.has(sub)) return undefined;
  return {
    accountId: sub,
    // Read at token time, so a PUT /_test/users/{sub} shows in the next sign-in's tokens.
    async claims() {
      return { ...users.get(sub), sub };
    },
  };
}

/** No consent screen: the (first-party) client gets every scope and claim it asks for. */
async function loadExistingGrant(ctx) {
  const { oidc } = ctx;
  const accountId = oidc.account.accountId;
  const clientId = oidc.client.clientId;
  const grantId = oidc.result?.consent?.grantId || oidc.session.grantIdFor(clientId);
  let grant = grantId ? await oidc.provider.Grant.find(grantId) : undefined;
  if (!grant || grant.accountId !== accountId) {
    grant = new oidc.provider.Grant({ accountId, clientId });
  }
  grant.addOIDCScope([...oidc.requestParamOIDCScopes].join(' '));
  grant.addOIDCClaims([...oidc.requestParamClaims]);
  await grant.save();
  return grant;
}

function interactionPolicyFor(sso) {
  const policy = interactionPolicy.base();
  if (!sso) {
    // Ask for the username on every authorization request, unless this request has just signed in.
    policy.get('login').checks.add(new interactionPolicy.Check(
      'local_always_sign_in',
      'the local test provider asks who is signing in every time',
      (ctx) => (ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT : interactionPolicy.Check.REQUEST_PROMPT),
    ));
  }
  return policy;
}

function providerConfiguration() {
  // The key leaves the generator as PEM and is read back as a key object of its
  // own before its export to JWK. Exporting the generator's own key object
  // deadlocked Node 20 once (seen in a full test run): the export holds the
  // key's lock, allocates, the allocation runs a GC, and the GC finalises the
  // finished generator job, which shares that key and waits for the same lock.
  const { privateKey: pem } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const signingKey = { ...createPrivateKey(pem).export({ format: 'jwk' }), kid: 'local-rs256', use: 'sig', alg: 'RS256' };
  return {
    clients: [{
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      client_name: 'IPS bridge (local)',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      // Port-less representatives; redirectUriAllowed below accepts any loopback port.
      redirect_uris: ['http://127.0.0.1/auth/callback', 'http://localhost/auth/callback'],
      post_logout_redirect_uris: ['http://127.0.0.1/', 'http://127.0.0.1/signed-out', 'http://localhost/', 'http://localhost/signed-out'],
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: SCOPES,
    claims: CLAIMS,
    // name, email and roles go in the ID token even though an access token is issued too.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    responseTypes: ['code'],
    findAccount,
    loadExistingGrant,
    interactions: {
      policy: interactionPolicyFor(args.sso),
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: true },
      rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    },
    ttl: {
      AccessToken: 3600,
      AuthorizationCode: 120,
      IdToken: 3600,
      Interaction: 3600,
      Session: 8 * 3600,
      Grant: 8 * 3600,
    },
    renderError,
  };
}

// ---------------------------------------------------------------------------
// Pages (plain, accessible HTML)
// ---------------------------------------------------------------------------

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const STYLE = `body{font-family:Arial,sans-serif;color:#212b32;background:#f0f4f5;margin:0}
main{max-width:28rem;margin:3rem auto;background:#fff;padding:1.5rem 2rem;border-radius:4px}
label{display:block;font-weight:bold;margin:1rem 0 .25rem}
input{font-size:1rem;padding:.4rem;width:100%;box-sizing:border-box;border:2px solid #4c6272}
input:focus,button:focus{outline:3px solid #ffeb3b;outline-offset:0}
button{margin-top:1.25rem;font-size:1rem;font-weight:bold;padding:.6rem 1rem;color:#fff;background:#007f3b;border:0;border-radius:4px;cursor:pointer}
.error{color:#d5281b;font-weight:bold}
.error-summary{border:4px solid #d5281b;padding:.5rem 1rem;margin-bottom:1rem}
.hint{color:#4c6272}
.visually-hidden{position:absolute!important;width:1px!important;height:1px!important;margin:0!important;padding:0!important;overflow:hidden!important;clip:rect(0 0 0 0)!important;white-space:nowrap!important;border:0!important}`;

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)} - Local sign-in (test provider)</title>
<style>${STYLE}</style>
</head>
<body>
<main id="main-content">
${body}
</main>
</body>
</html>`;
}

function loginPage(uid, { error, login } = {}) {
  const errorSummary = error
    ? `<div class="error-summary" role="alert" aria-labelledby="error-summary-title">
<h2 id="error-summary-title">There is a problem</h2>
<p><a href="#login">${esc(error)}</a></p>
</div>`
    : '';
  return page(error ? `Error: Sign in` : 'Sign in', `${errorSummary}
<h1>Sign in</h1>
<p class="hint">Local test identity provider. Any password is accepted.</p>
<form method="post" action="/interaction/${esc(uid)}/login" novalidate>
<label for="login">Username</label>
${error ? `<p id="login-error" class="error"><span class="visually-hidden">Error:</span> ${esc(error)}</p>` : ''}
<input id="login" name="login" type="text" autocomplete="username" spellcheck="false" autocapitalize="none" value="${esc(login)}"${error ? ' aria-describedby="login-error" aria-invalid="true"' : ''}>
<label for="password">Password (ignored)</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button id="sign-in" type="submit">Sign in</button>
</form>`);
}

// The RP-initiated logout confirmation submits itself (a test provider need not ask);
// without JavaScript the button does it.
async function logoutSource(ctx, form) {
  ctx.type = 'html';
  ctx.body = page('Sign out', `<h1>Sign out</h1>
${form}
<button id="sign-out" type="submit" form="op.logoutForm" name="logout" value="yes">Sign out</button>
<script>document.getElementById('sign-out').click();</script>`);
}

async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<h1>You have signed out</h1>');
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Error', `<h1>Sign-in error</h1>
<dl>${Object.entries(out).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`);
}

// ---------------------------------------------------------------------------
// HTTP: interaction (sign-in form), test hooks, then oidc-provider for the rest
// ---------------------------------------------------------------------------

async function readBody(req, limit = 1024 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw Object.assign(new Error('body too large'), { status: 413 });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function handleInteraction(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    return send(res, 400, 'text/html; charset=utf-8', page('Error', '<h1>This sign-in link is out of date</h1>'));
  }
  const { prompt } = details;
  if (prompt.name !== 'login') {
    // Consent is granted by loadExistingGrant, so no other prompt is expected.
    return provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET' && action === undefined) {
    return send(res, 200, 'text/html; charset=utf-8', loginPage(uid, { login: details.params.login_hint }));
  }
  if (req.method === 'POST' && action === 'login') {
    const form = new URLSearchParams(await readBody(req));
    const login = (form.get('login') ?? '').trim();
    if (!users.has(login)) {
      const error = login ? `No user named “${login}”` : 'Enter your username';
      return send(res, 422, 'text/html; charset=utf-8', loginPage(uid, { error, login }));
    }
    log(`signed in: ${login}`);
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'text/plain', 'method not allowed');
}

// ---------------------------------------------------------------------------
// Test-only hooks (not OIDC): PUT /_test/users/{sub} replaces that user's claims
// (creating the user if absent); GET /_test/users lists them; GET /_test/health.
// ---------------------------------------------------------------------------

async function handleTestHook(req, res, path) {
  if (path === '/_test/health') return send(res, 200, 'application/json', '{"status":"ok"}');
  if (path === '/_test/users' && req.method === 'GET') {
    return send(res, 200, 'application/json', JSON.stringify(Object.fromEntries(users)));
  }
  const m = path.match(/^\/_test\/users\/([^/]+)$/);
  if (m && req.method === 'PUT') {
    const sub = decodeURIComponent(m[1]);
    let claims;
    try {
      claims = JSON.parse(await readBody(req));
    } catch {
      return send(res, 400, 'application/json', '{"error":"body is not JSON"}');
    }
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) {
      return send(res, 400, 'application/json', '{"error":"body must be a JSON object of claims"}');
    }
    delete claims.sub;
    users.set(sub, claims);
    log(`test hook: claims of ${sub} replaced`);
    return send(res, 200, 'application/json', JSON.stringify({ sub, ...claims }));
  }
  return send(res, 404, 'application/json', '{"error":"no such test hook"}');
}

// ---------------------------------------------------------------------------

let provider;
let oidcCallback;

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://x').pathname;
  try {
    const im = path.match(/^\/interaction\/([^/]+)(?:\/(login))?$/);
    if (im) return await handleInteraction(provider, req, res, im[1], im[2]);
    if (path.startsWith('/_test/')) return await handleTestHook(req, res, path);
    return oidcCallback(req, res);
  } catch (err) {
    log(`error on ${req.method} ${path}: ${err.message}`);
    if (!res.headersSent) {
      const status = err.status ?? (err.name === 'SessionNotFound' ? 400 : 500);
      send(res, status, 'text/html; charset=utf-8', page('Error', `<h1>Sign-in error</h1><p>${esc(err.message)}</p>`));
    } else {
      res.end();
    }
  }
});

server.listen(Number(args.port), args.host, () => {
  const { address, port, family } = server.address();
  const host = family === 'IPv6' || family === 6 ? `[${address}]` : address;
  const issuer = `http://${host}:${port}`;
  provider = new Provider(issuer, providerConfiguration());
  const { Client } = provider;
  // RFC 8252 §7.3: a loopback redirect URI may use any port; oidc-provider only allows that
  // for native clients, and this one is a confidential web client of a daemon on a test port.
  Client.prototype.redirectUriAllowed = function redirectUriAllowed(value) {
    return this.redirectUris.includes(value) || loopbackUriAllowed(value, REDIRECT_PATHS);
  };
  Client.prototype.postLogoutRedirectUriAllowed = function postLogoutRedirectUriAllowed(value) {
    return this.postLogoutRedirectUris.includes(value) || loopbackUriAllowed(value, POST_LOGOUT_PATHS);
  };
  provider.on('server_error', (_ctx, err) => log(`server_error: ${err.stack ?? err}`));
  oidcCallback = provider.callback();
  // The contract with the Rust tests and services.sh: first stdout line = issuer URL.
  process.stdout.write(`${issuer}\n`);
  log(`issuer ${issuer}; client ${args['client-id']}; ${users.size} users from ${args.users}`);
});
server.on('error', (err) => {
  log(`server error: ${err.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
