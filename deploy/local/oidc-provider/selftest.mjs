#!/usr/bin/env node
// Self-test of the local OIDC provider, with plain fetch and no browser:
// discovery; a full authorization code + PKCE (S256) flow through the sign-in form
// (cookies handled by hand); the ID token carries name, email and roles; userinfo too;
// a wrong code_verifier is invalid_grant; an unknown username gets the form again;
// a loopback redirect on another port is accepted and a non-loopback one refused;
// PUT /_test/users/{sub} changes the roles of the next sign-in.
// Usage: node selftest.mjs   (exit status 0 = all good)

import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLIENT_ID = 'ips-bridge';
const CLIENT_SECRET = 'ips-bridge-local-secret';

let failures = 0;
function check(cond, what) {
  if (cond) {
    console.log(`ok   ${what}`);
  } else {
    failures += 1;
    console.log(`FAIL ${what}`);
  }
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const decodeJwt = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

/** A cookie jar good enough for one host: name -> value, paths ignored. */
class Jar {
  cookies = new Map();
  store(res) {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

async function startServer() {
  const child = spawn(process.execPath, [join(HERE, 'server.mjs'), '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const rl = createInterface({ input: child.stdout });
  const issuer = await new Promise((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before printing its issuer`)));
  });
  return { child, issuer };
}

/**
 * Runs the front channel by hand: GET the authorization URL, follow redirects to the
 * sign-in form, POST the username, follow redirects until one leaves the provider.
 * Returns { location } (the redirect to the client) or { status, body } (a page shown).
 */
async function frontChannel(issuer, authUrl, login, jar = new Jar()) {
  let url = authUrl;
  let method = 'GET';
  let body;
  for (let hop = 0; hop < 20; hop += 1) {
    const res = await fetch(url, {
      method,
      body,
      redirect: 'manual',
      headers: {
        cookie: jar.header(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
    });
    jar.store(res);
    method = 'GET';
    body = undefined;
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location'), url).href;
      if (!next.startsWith(issuer)) return { location: next };
      url = next;
      continue;
    }
    const html = await res.text();
    const action = html.match(/<form method="post" action="([^"]+)"/);
    if (res.status === 200 && action && login !== undefined && html.includes('id="sign-in"')) {
      url = new URL(action[1], url).href;
      method = 'POST';
      body = new URLSearchParams({ login, password: 'whatever' }).toString();
      login = undefined; // only once; a second form means the username was refused
      continue;
    }
    return { status: res.status, body: html };
  }
  throw new Error('too many redirects');
}

function pkce() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

function authorizationUrl(meta, redirectUri, challenge, extra = {}) {
  const u = new URL(meta.authorization_endpoint);
  u.search = new URLSearchParams({
    client_id: CLIENT_ID,
    response_type: 'code',
    scope: 'openid profile email roles',
    redirect_uri: redirectUri,
    state: b64url(randomBytes(12)),
    nonce: b64url(randomBytes(12)),
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return u.href;
}

async function token(meta, code, redirectUri, verifier) {
  const res = await fetch(meta.token_endpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }),
  });
  return { status: res.status, json: await res.json() };
}

async function signIn(meta, issuer, login, redirectUri = 'http://127.0.0.1:49152/auth/callback', jar = new Jar()) {
  const { verifier, challenge } = pkce();
  const out = await frontChannel(issuer, authorizationUrl(meta, redirectUri, challenge), login, jar);
  const code = out.location ? new URL(out.location).searchParams.get('code') : null;
  return { ...out, code, verifier, redirectUri };
}

async function main() {
  const { child, issuer } = await startServer();
  try {
    check(/^http:\/\/127\.0\.0\.1:\d+$/.test(issuer), `first stdout line is the issuer (${issuer})`);

    const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    check(meta.issuer === issuer, 'discovery: issuer');
    check(meta.code_challenge_methods_supported?.includes('S256'), 'discovery: S256 PKCE');
    check(meta.scopes_supported?.includes('roles'), 'discovery: roles scope');
    check(typeof meta.userinfo_endpoint === 'string', 'discovery: userinfo endpoint');

    // Full flow for alice.
    const a = await signIn(meta, issuer, 'alice');
    check(Boolean(a.code), `alice: redirected to the client with a code (${a.location ?? a.status})`);
    check(a.location?.startsWith('http://127.0.0.1:49152/auth/callback?'), 'alice: redirect to the loopback callback');

    // Wrong verifier first: invalid_grant (and the code is then spent, as RFC 6749 wants).
    const wrong = await token(meta, a.code, a.redirectUri, pkce().verifier);
    check(wrong.status === 400 && wrong.json.error === 'invalid_grant', `wrong code_verifier: invalid_grant (${wrong.status} ${wrong.json.error})`);

    const a2 = await signIn(meta, issuer, 'alice', 'http://localhost:8123/auth/callback');
    check(Boolean(a2.code), 'alice again via localhost on another port: code');
    const noVerifier = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: a2.code, redirect_uri: a2.redirectUri }),
    });
    check(noVerifier.status === 400, `missing code_verifier refused (${noVerifier.status})`);

    const a3 = await signIn(meta, issuer, 'alice');
    const good = await token(meta, a3.code, a3.redirectUri, a3.verifier);
    check(good.status === 200 && typeof good.json.id_token === 'string', `right code_verifier: tokens (${good.status})`);
    const idt = decodeJwt(good.json.id_token);
    check(idt.sub === 'alice' && idt.iss === issuer && idt.aud === CLIENT_ID, 'ID token: sub, iss, aud');
    check(Array.isArray(idt.roles) && idt.roles.length === 1 && idt.roles[0] === 'specialist', `ID token: roles ${JSON.stringify(idt.roles)}`);
    check(idt.name === 'Alice Specialist' && idt.email === 'alice@ips.example.nhs.uk', 'ID token: name and email');
    const ui = await (await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${good.json.access_token}` } })).json();
    check(JSON.stringify(ui.roles) === '["specialist"]' && ui.name === 'Alice Specialist', `userinfo: roles and name (${JSON.stringify(ui)})`);

    // Same browser (cookie jar), second sign-in: the form is shown again (no silent SSO),
    // so a test can sign in as someone else; then RP-initiated logout back to the client.
    const jar = new Jar();
    const first = await signIn(meta, issuer, 'alice', undefined, jar);
    const again = await frontChannel(issuer, authorizationUrl(meta, 'http://127.0.0.1:49152/auth/callback', pkce().challenge), undefined, jar);
    check(first.code && again.status === 200 && again.body.includes('id="sign-in"'), 'second authorization in the same browser asks for the username again');
    const firstTokens = await token(meta, first.code, first.redirectUri, first.verifier);
    const endUrl = new URL(meta.end_session_endpoint);
    endUrl.search = new URLSearchParams({
      id_token_hint: firstTokens.json.id_token,
      post_logout_redirect_uri: 'http://127.0.0.1:49152/signed-out',
    }).toString();
    const logoutPage = await fetch(endUrl, { headers: { cookie: jar.header() } });
    jar.store(logoutPage);
    const logoutHtml = await logoutPage.text();
    const logoutAction = logoutHtml.match(/action="([^"]+)"/)?.[1];
    const xsrf = logoutHtml.match(/name="xsrf" value="([^"]+)"/)?.[1];
    check(logoutPage.status === 200 && logoutAction && xsrf && logoutHtml.includes('id="sign-out"'), 'end_session: sign-out page (auto-submitting)');
    const logout = await fetch(new URL(logoutAction, endUrl), {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    });
    const signedOut = logout.headers.get('location') ?? '';
    check(signedOut.startsWith('http://127.0.0.1:49152/signed-out'), `end_session: back to the client's /signed-out (${logout.status} ${signedOut})`);

    // Unknown user: the form again, with an error.
    const nobody = await signIn(meta, issuer, 'mallory');
    check(nobody.status === 422 && nobody.body.includes('id="login"') && nobody.body.includes('No user named'), 'unknown username: form again with an error');

    // Redirect URIs: loopback on any port with the right path only.
    for (const [uri, allowed] of [
      ['http://127.0.0.1:1/auth/callback', true],
      ['http://127.0.0.1:9000/other', false],
      ['http://example.com:9000/auth/callback', false],
      ['https://127.0.0.1:9000/auth/callback', false],
    ]) {
      const out = await frontChannel(issuer, authorizationUrl(meta, uri, pkce().challenge), undefined);
      const shownForm = out.status === 200 && out.body.includes('id="sign-in"');
      check(shownForm === allowed, `redirect_uri ${uri} ${allowed ? 'accepted' : 'refused'}`);
    }

    // Test hook: lena becomes an admin too.
    const put = await fetch(`${issuer}/_test/users/lena`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Lena Lead', roles: ['team-lead', 'admin'] }),
    });
    check(put.status === 200, 'PUT /_test/users/lena');
    const l = await signIn(meta, issuer, 'lena');
    const lt = await token(meta, l.code, l.redirectUri, l.verifier);
    check(JSON.stringify(decodeJwt(lt.json.id_token ?? 'a.e30.c').roles) === '["team-lead","admin"]', 'lena: new roles in the next ID token');
  } finally {
    child.kill();
  }
  if (failures) {
    console.log(`${failures} check(s) failed`);
    process.exit(1);
  }
  console.log('all checks passed');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
