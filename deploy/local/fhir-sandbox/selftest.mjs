#!/usr/bin/env node
// Self-test for server.mjs: starts it on port 0 as a child process and exercises
// every feature the Rust tests rely on. Exit code 0 only if everything passed.
//
// Usage: node selftest.mjs            (add --verbose to see the server's stderr)

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const VERBOSE = process.argv.includes('--verbose');

let BASE; // http://127.0.0.1:<port>/fhir
let ORIGIN; // http://127.0.0.1:<port>
let child;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

async function startServer() {
  child = spawn(process.execPath, [join(HERE, 'server.mjs'), '--port', '0'], {
    stdio: ['ignore', 'pipe', VERBOSE ? 'inherit' : 'ignore'],
  });
  const lines = createInterface({ input: child.stdout });
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const [firstLine] = await Promise.race([
    once(lines, 'line'),
    once(child, 'exit').then(([code]) => {
      throw new Error(`server exited with ${code} before printing its base URL`);
    }),
  ]);
  clearTimeout(timer);
  const extra = [];
  lines.on('line', (l) => extra.push(l));
  return { firstLine, extra };
}

/** fetch wrapper: JSON body in, {status, headers, body} out. */
async function http(method, path, { body, headers = {}, raw, signal } = {}) {
  const url = path.startsWith('http') ? path : `${BASE}${path}`;
  const init = { method, headers: { ...headers }, signal };
  if (raw !== undefined) {
    init.body = raw;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['content-type'] ??= 'application/fhir+json';
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, body: json, text };
}

const sandbox = (method, path, body) => http(method, `${ORIGIN}/__sandbox${path}`, { body, headers: { 'content-type': 'application/json' } });
const reset = async () => assert.equal((await sandbox('POST', '/reset')).status, 200);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function assertOutcome(res, status, code) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${res.text}`);
  assert.equal(res.body?.resourceType, 'OperationOutcome', `expected an OperationOutcome: ${res.text}`);
  assert.ok(res.body.issue?.length > 0, 'OperationOutcome has issues');
  if (code) assert.ok(res.body.issue.some((i) => i.code === code), `expected issue code ${code}: ${res.text}`);
}

function assertResourceHeaders(res) {
  const vid = res.body?.meta?.versionId;
  assert.ok(vid, 'meta.versionId present');
  assert.ok(res.body.meta.lastUpdated, 'meta.lastUpdated present');
  assert.equal(res.headers.get('etag'), `W/"${vid}"`);
  assert.match(res.headers.get('content-type') ?? '', /^application\/fhir\+json/);
}

/** Follows next links from the first page; returns all entries and the pages. */
async function pageAll(firstPath) {
  const pages = [];
  let url = firstPath;
  while (url) {
    const res = await http('GET', url);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.type, 'searchset');
    pages.push(res.body);
    assert.ok(pages.length < 1000, 'runaway paging');
    url = res.body.link?.find((l) => l.relation === 'next')?.url;
    if (url) assert.ok(url.startsWith(`${BASE}/`), `next link ${url} must be absolute under ${BASE}`);
  }
  return { pages, entries: pages.flatMap((p) => p.entry ?? []) };
}

const patient = (system, value, extra = {}) => ({
  resourceType: 'Patient',
  identifier: [{ system, value }],
  name: [{ family: 'Test', given: [value] }],
  ...extra,
});

const serviceRequest = (n, extra = {}) => ({
  resourceType: 'ServiceRequest',
  status: 'active',
  intent: 'order',
  subject: { reference: 'Patient/p1' },
  identifier: [{ system: 'urn:test:sr', value: `SR-${n}` }],
  ...extra,
});

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

const tests = [];
const test = (name, fn) => tests.push({ name, fn });
const info = [];

test('health, stats, reset', async () => {
  let res = await sandbox('GET', '/health');
  assert.equal(res.status, 200);
  assert.deepEqual(res.body, { status: 'ok' });
  await reset();
  res = await sandbox('GET', '/stats');
  assert.equal(res.body.requests, 0);
  await http('GET', '/Patient');
  await http('POST', '/Patient', { body: patient('urn:a', '1') });
  await http('GET', '/Patient/nope');
  res = await sandbox('GET', '/stats');
  assert.equal(res.body.requests, 3);
  assert.deepEqual(res.body.byMethod, { GET: 2, POST: 1 });
  await reset();
  assert.equal((await sandbox('GET', '/stats')).body.requests, 0);
  res = await http('GET', '/Patient?_total=accurate');
  assert.equal(res.body.total, 0, 'reset wiped data');
  assert.equal((await http('GET', `${ORIGIN}/not-fhir`)).status, 404);
});

test('CRUD with ETag, Location, vread, update-as-create, delete', async () => {
  await reset();
  let res = await http('POST', '/Patient', { body: patient('urn:crud', 'A', { id: 'client-id', meta: { versionId: 'client-vid' } }) });
  assert.equal(res.status, 201, res.text);
  assertResourceHeaders(res);
  const { id } = res.body;
  const vid1 = res.body.meta.versionId;
  assert.notEqual(id, 'client-id', 'server assigns the id on create');
  assert.notEqual(vid1, 'client-vid', 'server assigns the versionId');
  assert.equal(res.headers.get('location'), `${BASE}/Patient/${id}/_history/${vid1}`);

  res = await http('GET', `/Patient/${id}`);
  assert.equal(res.status, 200);
  assertResourceHeaders(res);
  assert.equal(res.body.meta.versionId, vid1);

  const updated = { ...res.body, active: true };
  res = await http('PUT', `/Patient/${id}`, { body: updated });
  assert.equal(res.status, 200, res.text);
  assertResourceHeaders(res);
  const vid2 = res.body.meta.versionId;
  assert.notEqual(vid2, vid1);
  assert.equal(res.body.active, true);

  res = await http('GET', `/Patient/${id}/_history/${vid1}`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.meta.versionId, vid1);
  assert.equal(res.body.active, undefined);

  res = await http('PUT', '/Patient/made-by-put', { body: patient('urn:crud', 'B', { id: 'made-by-put' }) });
  assert.equal(res.status, 201, `update-as-create must be 201: ${res.text}`);
  assertResourceHeaders(res);
  assert.equal(res.headers.get('location'), `${BASE}/Patient/made-by-put/_history/${res.body.meta.versionId}`);

  res = await http('DELETE', `/Patient/${id}`);
  assert.equal(res.status, 200);
  res = await http('GET', `/Patient/${id}`);
  assertOutcome(res, 410);
  res = await http('GET', '/Patient/never-existed');
  assertOutcome(res, 404);
  res = await http('DELETE', '/Patient/never-existed');
  assert.equal(res.status, 200, 'delete of a missing resource is idempotent');
  res = await http('GET', '/metadata');
  assert.equal(res.body.resourceType, 'CapabilityStatement');
});

test('conditional create dedupes (If-None-Exist, | raw or %7C)', async () => {
  await reset();
  const body = patient('urn:cc', 'X-1');
  const a = await http('POST', '/Patient', { body, headers: { 'If-None-Exist': 'identifier=urn:cc|X-1' } });
  assert.equal(a.status, 201, a.text);
  const b = await http('POST', '/Patient', { body, headers: { 'If-None-Exist': 'identifier=urn:cc%7CX-1' } });
  assert.equal(b.status, 200, `matched conditional create must be 200: ${b.text}`);
  assert.equal(b.body.id, a.body.id);
  assert.equal(b.body.meta.versionId, a.body.meta.versionId, 'no new version');
  assert.equal(b.headers.get('etag'), `W/"${a.body.meta.versionId}"`);
  const found = await http('GET', '/Patient?identifier=urn:cc|X-1&_total=accurate');
  assert.equal(found.body.total, 1);
  assert.equal(found.body.entry.length, 1);

  // Two resources with the same identifier -> 412 multiple matches.
  await http('POST', '/Patient', { body: patient('urn:cc', 'DUP') });
  await http('POST', '/Patient', { body: patient('urn:cc', 'DUP') });
  const c = await http('POST', '/Patient', { body: patient('urn:cc', 'DUP'), headers: { 'If-None-Exist': 'identifier=urn:cc|DUP' } });
  assertOutcome(c, 412);
  // An unknown parameter in If-None-Exist is an error, not a match-everything.
  const d = await http('POST', '/Patient', { body, headers: { 'If-None-Exist': 'identifer=urn:cc|X-1' } });
  assertOutcome(d, 400);
});

test('If-Match: 412 on stale version, 200 on current (W/"x", "x", bare)', async () => {
  await reset();
  const created = await http('POST', '/Patient', { body: patient('urn:im', '1') });
  const { id } = created.body;
  const v1 = created.body.meta.versionId;
  const v2res = await http('PUT', `/Patient/${id}`, { body: { ...created.body, active: true }, headers: { 'If-Match': `W/"${v1}"` } });
  assert.equal(v2res.status, 200, v2res.text);
  const v2 = v2res.body.meta.versionId;

  for (const stale of [`W/"${v1}"`, `"${v1}"`, v1]) {
    const res = await http('PUT', `/Patient/${id}`, { body: { ...created.body, active: false }, headers: { 'If-Match': stale } });
    assertOutcome(res, 412, 'conflict');
  }
  const unchanged = await http('GET', `/Patient/${id}`);
  assert.equal(unchanged.body.meta.versionId, v2, 'stale If-Match did not update');
  assert.equal(unchanged.body.active, true);

  let current = v2;
  for (const form of [(v) => `"${v}"`, (v) => `W/"${v}"`, (v) => v]) {
    const res = await http('PUT', `/Patient/${id}`, { body: { ...unchanged.body, gender: 'other' }, headers: { 'If-Match': form(current) } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers.get('etag'), `W/"${res.body.meta.versionId}"`);
    current = res.body.meta.versionId;
  }
});

test('search params: identifier, subject, code, focus, _id, _count', async () => {
  await reset();
  const sr = await http('POST', '/ServiceRequest', {
    body: serviceRequest(1, { subject: { reference: 'Patient/x' }, code: { coding: [{ system: 'http://loinc.org', code: '1234-5' }] } }),
  });
  await http('POST', '/ServiceRequest', { body: serviceRequest(2, { subject: { reference: 'Patient/y' } }) });
  const srId = sr.body.id;
  const task = await http('POST', '/Task', { body: { resourceType: 'Task', status: 'requested', intent: 'order', focus: { reference: `ServiceRequest/${srId}` } } });
  assert.equal(task.status, 201, task.text);

  const one = async (path) => {
    const res = await http('GET', path);
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    assert.equal(res.body.entry?.length, 1, `${path} -> ${res.body.entry?.length}`);
    return res.body.entry[0];
  };
  assert.equal((await one('/ServiceRequest?identifier=urn:test:sr|SR-1')).resource.id, srId);
  assert.equal((await one('/ServiceRequest?identifier=urn:test:sr%7CSR-1')).resource.id, srId);
  assert.equal((await one('/ServiceRequest?subject=Patient/x')).resource.id, srId);
  assert.equal((await one('/ServiceRequest?code=http://loinc.org|1234-5')).resource.id, srId);
  assert.equal((await one(`/Task?focus=ServiceRequest/${srId}`)).resource.id, task.body.id);
  const byId = await one(`/ServiceRequest?_id=${srId}`);
  assert.equal(byId.fullUrl, `${BASE}/ServiceRequest/${srId}`);
  const page = await http('GET', '/ServiceRequest?_count=1');
  assert.equal(page.body.entry.length, 1);
  assert.ok(page.body.link.some((l) => l.relation === 'self'));
  assert.ok(page.body.link.some((l) => l.relation === 'next'));
  assert.equal(page.body.total, undefined, 'total only with _total=accurate');
  const summary = await http('GET', '/ServiceRequest?_summary=count');
  assert.equal(summary.body.total, 2);
  assertOutcome(await http('GET', '/ServiceRequest?no-such-param=1'), 400);
  assertOutcome(await http('GET', '/ServiceRequest?_count=abc'), 400);
});

test('_lastUpdated ge/gt/le/lt filtering', async () => {
  await reset();
  const a = await http('POST', '/Task', { body: { resourceType: 'Task', status: 'requested', intent: 'order', description: 'A' } });
  await sleep(15);
  const t = new Date().toISOString();
  await sleep(15);
  const b = await http('POST', '/Task', { body: { resourceType: 'Task', status: 'requested', intent: 'order', description: 'B' } });
  const ids = async (q) => ((await http('GET', `/Task?${q}`)).body.entry ?? []).map((e) => e.resource.id).sort();
  assert.deepEqual(await ids(`_lastUpdated=ge${t}`), [b.body.id]);
  assert.deepEqual(await ids(`_lastUpdated=gt${t}`), [b.body.id]);
  assert.deepEqual(await ids(`_lastUpdated=le${t}`), [a.body.id]);
  assert.deepEqual(await ids(`_lastUpdated=lt${t}`), [a.body.id]);
  assert.deepEqual(await ids(`_lastUpdated=ge${b.body.meta.lastUpdated}`), [b.body.id], 'ge is inclusive');
  assert.deepEqual(await ids(`_lastUpdated=gt${b.body.meta.lastUpdated}`), [], 'gt is exclusive');
  assert.deepEqual(await ids(`_lastUpdated=eq${b.body.meta.lastUpdated}`), [b.body.id], 'eq on an exact instant');
  assert.deepEqual(await ids(`_lastUpdated=${a.body.meta.lastUpdated}`), [a.body.id], 'no prefix = eq');
  // A time-zone offset must be sent as %2B (a literal + is a space in a query).
  const withOffset = t.replace('Z', '+00:00').replace('+', '%2B');
  assert.deepEqual(await ids(`_lastUpdated=ge${withOffset}`), [b.body.id]);
});

test('stable paging: 250 resources created in one burst, _count=50, every id exactly once', async () => {
  await reset();
  const start = new Date(Date.now() - 1).toISOString();
  const created = [];
  for (let wave = 0; wave < 10; wave++) {
    const batch = await Promise.all(Array.from({ length: 25 }, (_, i) => http('POST', '/ServiceRequest', { body: serviceRequest(wave * 25 + i) })));
    for (const r of batch) {
      assert.equal(r.status, 201, r.text);
      created.push(r.body);
    }
  }
  const perMs = new Map();
  for (const r of created) perMs.set(r.meta.lastUpdated, (perMs.get(r.meta.lastUpdated) ?? 0) + 1);
  const shared = [...perMs.values()].filter((n) => n > 1).reduce((a, n) => a + n, 0);
  info.push(`paging: ${shared}/250 resources share a lastUpdated millisecond with another (max ${Math.max(...perMs.values())} per ms)`);

  const { pages, entries } = await pageAll(`/ServiceRequest?_lastUpdated=ge${start}&_sort=_lastUpdated&_count=50`);
  assert.equal(pages.length, 5);
  assert.ok(pages.every((p) => (p.entry?.length ?? 0) <= 50));
  const ids = entries.map((e) => e.resource.id);
  assert.equal(ids.length, 250, 'no duplicates, nothing missing');
  assert.equal(new Set(ids).size, 250);
  assert.deepEqual(new Set(ids), new Set(created.map((r) => r.id)));
  for (let i = 1; i < entries.length; i++) {
    assert.ok(entries[i - 1].resource.meta.lastUpdated <= entries[i].resource.meta.lastUpdated, 'sorted by _lastUpdated');
  }
  assert.ok(entries.every((e) => e.fullUrl === `${BASE}/ServiceRequest/${e.resource.id}`));
  const next = pages[0].link.find((l) => l.relation === 'next').url;
  assert.match(next, /_lastUpdated=ge/);
  assert.match(next, /_sort=_lastUpdated/);
  assert.match(next, /_count=50/);
  assert.match(next, /_offset=50/);

  // Descending order and paging twice gives the same sequence.
  const desc = await pageAll(`/ServiceRequest?_sort=-_lastUpdated&_count=50`);
  assert.deepEqual(desc.entries.map((e) => e.resource.id), [...ids].reverse());
  const again = await pageAll(`/ServiceRequest?_lastUpdated=ge${start}&_sort=_lastUpdated&_count=50`);
  assert.deepEqual(again.entries.map((e) => e.resource.id), ids);
});

test('transaction bundle (urn:uuid refs) and rollback on failure; batch', async () => {
  await reset();
  const pUrn = 'urn:uuid:4f9e4a1c-1111-4c6e-8d1c-0c5b8f3f0a01';
  const tx = {
    resourceType: 'Bundle',
    type: 'transaction',
    entry: [
      { fullUrl: pUrn, resource: patient('urn:tx', 'P1'), request: { method: 'POST', url: 'Patient' } },
      { resource: serviceRequest('TX', { subject: { reference: pUrn } }), request: { method: 'POST', url: 'ServiceRequest', ifNoneExist: 'identifier=urn:test:sr|SR-TX' } },
    ],
  };
  let res = await http('POST', '', { body: tx });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.type, 'transaction-response');
  assert.equal(res.body.entry.length, 2);
  for (const e of res.body.entry) {
    assert.equal(e.response.status, '201');
    assert.match(e.response.location, /^(Patient|ServiceRequest)\/[^/]+\/_history\/[^/]+$/);
    assert.equal(e.response.etag, `W/"${e.resource.meta.versionId}"`);
  }
  const pid = res.body.entry[0].resource.id;
  assert.equal(res.body.entry[1].resource.subject.reference, `Patient/${pid}`);

  // Conditional create inside a transaction re-uses the existing resource.
  res = await http('POST', '', { body: { ...tx, entry: [tx.entry[1]] } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.entry[0].response.status, '200');
  assert.equal((await http('GET', '/ServiceRequest?_total=accurate')).body.total, 1);

  // A failing entry (stale If-Match) rolls the whole transaction back.
  const current = (await http('GET', `/Patient/${pid}`)).body;
  res = await http('POST', '', {
    body: {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: patient('urn:tx', 'ROLLED-BACK'), request: { method: 'POST', url: 'Patient' } },
        { resource: { ...current, active: true }, request: { method: 'PUT', url: `Patient/${pid}`, ifMatch: 'W/"stale"' } },
      ],
    },
  });
  assertOutcome(res, 412);
  assert.equal((await http('GET', '/Patient?identifier=urn:tx|ROLLED-BACK')).body.entry.length, 0, 'rolled back');

  // Invalid resource in a transaction -> 400 before anything is written.
  res = await http('POST', '', { body: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { resourceType: 'Patient', active: 'yes' }, request: { method: 'POST', url: 'Patient' } }] } });
  assertOutcome(res, 400);

  // Batch: entries succeed or fail independently.
  res = await http('POST', '', {
    body: {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient('urn:batch', 'OK'), request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'ServiceRequest' }, request: { method: 'POST', url: 'ServiceRequest' } },
        { request: { method: 'GET', url: `Patient/${pid}` } },
      ],
    },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.body.type, 'batch-response');
  assert.deepEqual(res.body.entry.map((e) => e.response.status), ['201', '400', '200']);
});

test('validation: 400 + OperationOutcome', async () => {
  await reset();
  const cases = [
    ['POST', '/Patient', { raw: '{not json' }, 'not valid JSON'],
    ['POST', '/Patient', { raw: '' }, 'empty'],
    ['POST', '/Patient', { body: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } }, 'does not match'],
    ['POST', '/Patient', { body: { resourceType: 'NoSuchType' } }, 'NoSuchType'],
    ['POST', '/NoSuchType', { body: { resourceType: 'NoSuchType' } }, 'NoSuchType'],
    ['POST', '/Patient', { body: { resourceType: 'Patient', active: 'yes' } }, 'Patient.active'],
    ['POST', '/Patient', { body: { resourceType: 'Patient', bogus: 1 } }, 'bogus'],
    ['POST', '/ServiceRequest', { body: { resourceType: 'ServiceRequest', intent: 'order', subject: { reference: 'Patient/1' } } }, 'ServiceRequest.status'],
    ['PUT', '/Patient/abc', { body: { resourceType: 'Patient', id: 'xyz' } }, 'does not match'],
    ['PUT', '/Patient/abc', { body: { resourceType: 'Patient' } }, 'does not match'],
  ];
  for (const [method, path, opts, needle] of cases) {
    const res = await http(method, path, { ...opts, headers: { 'content-type': 'application/fhir+json' } });
    assertOutcome(res, 400);
    assert.ok(res.text.includes(needle), `${method} ${path}: expected "${needle}" in ${res.text}`);
  }
  assert.equal((await http('GET', '/Patient?_total=accurate')).body.total, 0, 'nothing stored');
});

test('large bodies: ~8 MB attachment accepted, > 20 MB refused with 413', async () => {
  await reset();
  const data = Buffer.alloc(6 * 1024 * 1024, 7).toString('base64'); // 8 MB of base64
  const doc = {
    resourceType: 'DocumentReference',
    status: 'current',
    identifier: [{ system: 'urn:big', value: '1' }],
    content: [{ attachment: { contentType: 'application/pdf', data } }],
  };
  const t0 = Date.now();
  let res = await http('POST', '/DocumentReference', { body: doc });
  assert.equal(res.status, 201, res.text.slice(0, 500));
  assert.equal(res.body.content[0].attachment.data.length, data.length);
  info.push(`large body: 8 MB DocumentReference create round trip ${Date.now() - t0} ms`);
  res = await http('POST', '/Patient', { raw: 'x'.repeat(21 * 1024 * 1024), headers: { 'content-type': 'application/fhir+json' } });
  assertOutcome(res, 413);
});

test('faults: 503 x3 with Retry-After, data untouched, then recovery', async () => {
  await reset();
  let res = await sandbox('POST', '/faults', { status: 503, count: 3, retryAfter: 1 });
  assert.equal(res.status, 200, res.text);
  res = await http('POST', '/Patient', { body: patient('urn:f', '1') });
  assertOutcome(res, 503);
  assert.equal(res.headers.get('retry-after'), '1');
  for (let i = 0; i < 2; i++) {
    res = await http('GET', '/Patient');
    assertOutcome(res, 503);
    assert.equal(res.headers.get('retry-after'), '1');
  }
  res = await http('GET', '/Patient?_total=accurate');
  assert.equal(res.status, 200);
  assert.equal(res.body.total, 0, 'faulted POST did not write');
  const stats = (await sandbox('GET', '/stats')).body;
  assert.equal(stats.requests, 4);
  assert.equal(stats.faultsInjected, 3);
  assert.equal(stats.faultsPending, 0);
});

test('faults: 429 without Retry-After, match by method/path, queue, clear', async () => {
  await reset();
  await sandbox('POST', '/faults', { status: 429, count: 1 });
  let res = await http('GET', '/Patient');
  assertOutcome(res, 429);
  assert.equal(res.headers.get('retry-after'), null);
  assert.equal((await http('GET', '/Patient')).status, 200);

  await sandbox('POST', '/faults', { status: 500, count: 1, match: { method: 'POST', pathPrefix: 'Task' } });
  await sandbox('POST', '/faults', { status: 429, count: 1, retryAfter: 2, match: { method: 'GET' } });
  const task = { resourceType: 'Task', status: 'requested', intent: 'order' };
  assert.equal((await http('POST', '/Patient', { body: patient('urn:q', '1') })).status, 201, 'not matched');
  res = await http('GET', '/Task');
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '2');
  assert.equal((await http('POST', '/Task', { body: task })).status, 500);
  assert.equal((await http('POST', '/Task', { body: task })).status, 201);

  await sandbox('POST', '/faults', { status: 503, count: 5 });
  assert.equal((await sandbox('GET', '/faults')).body.faults.length, 1);
  await sandbox('DELETE', '/faults');
  assert.equal((await http('GET', '/Task')).status, 200);
  assert.equal((await sandbox('POST', '/faults', { count: 1 })).status, 400, 'fault needs status or delayMs');
  // Sandbox hooks are never reachable under /fhir.
  assert.equal((await http('GET', '/__sandbox/health')).status, 400);
});

test('faults: a time-boxed outage, then the next window, then recovery', async () => {
  await reset();
  await sandbox('POST', '/faults', [{ status: 503, forMs: 300 }, { status: 429, retryAfter: 7, forMs: 600 }]);
  for (let i = 0; i < 4; i += 1) assert.equal((await http('GET', '/Patient')).status, 503, 'every request in the window');
  await new Promise((resolve) => setTimeout(resolve, 350));
  const res = await http('GET', '/Patient');
  assert.equal(res.status, 429);
  assert.equal(res.headers.get('retry-after'), '7');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal((await http('GET', '/Patient')).status, 200, 'both windows over');
  assert.equal((await sandbox('GET', '/faults')).body.faults.length, 0);
  assert.equal((await sandbox('POST', '/faults', { status: 503, forMs: 0 })).status, 400);
});

test('faults: a given OperationOutcome body', async () => {
  await reset();
  const body = { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics: 'echoed 9912003888', expression: ['Task.for.identifier'] }] };
  await sandbox('POST', '/faults', { status: 400, count: 1, outcome: body });
  const res = await http('GET', '/Task');
  assert.equal(res.status, 400);
  assert.deepEqual(res.body, body);
  assert.equal((await sandbox('POST', '/faults', { delayMs: 1, outcome: body })).status, 400, 'outcome needs a status');
  assert.equal((await sandbox('POST', '/faults', { status: 400, outcome: { issue: [] } })).status, 400, 'not an OperationOutcome');
});

test('faults: delay; a delayed write is applied even if the client gave up', async () => {
  await reset();
  await sandbox('POST', '/faults', { delayMs: 600, count: 1 });
  let t0 = Date.now();
  let res = await http('GET', '/Patient');
  assert.equal(res.status, 200);
  assert.ok(Date.now() - t0 >= 550, `delayed ${Date.now() - t0} ms`);

  await sandbox('POST', '/faults', { delayMs: 1000, count: 1, match: { method: 'POST' } });
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(http('POST', '/Patient', { body: patient('urn:delay', 'D1'), signal: controller.signal }));
  res = await http('GET', '/Patient?identifier=urn:delay|D1');
  assert.equal(res.body.entry.length, 0, 'not yet written');
  await sleep(1200);
  res = await http('GET', '/Patient?identifier=urn:delay|D1');
  assert.equal(res.body.entry.length, 1, 'written after the delay although the client disconnected');
  t0 = Date.now();
  assert.equal((await http('GET', '/Patient')).status, 200);
  assert.ok(Date.now() - t0 < 500, 'delay fault consumed');
});

test('throughput: conditional creates/s with ~100 resources stored (informative)', async () => {
  await reset();
  for (let i = 0; i < 100; i++) await http('POST', '/Patient', { body: patient('urn:perf', `P${i}`) });
  const run = async (n, concurrency, valueOf) => {
    const t0 = process.hrtime.bigint();
    let next = 0;
    const worker = async () => {
      while (next < n) {
        const i = next++;
        const value = valueOf(i);
        const r = await http('POST', '/Patient', { body: patient('urn:perf', value), headers: { 'If-None-Exist': `identifier=urn:perf|${value}` } });
        assert.ok(r.status === 200 || r.status === 201, r.text);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9));
  };
  const hits = await run(500, 1, (i) => `P${i % 100}`);
  const hits8 = await run(500, 8, (i) => `P${i % 100}`);
  const misses = await run(200, 8, (i) => `NEW${i}`);
  info.push(`throughput: conditional create (match, ~100 stored): ${hits}/s sequential, ${hits8}/s with 8 in flight; creating new (100 -> 300 stored, 8 in flight): ${misses}/s`);
  assert.equal((await http('GET', '/Patient?_total=accurate&_count=0')).body.total, 300);
});

// ---------------------------------------------------------------------------

async function main() {
  const t0 = Date.now();
  const { firstLine, extra } = await startServer();
  let passed = 0;
  let failed = 0;
  const report = (ok, name, err) => {
    if (ok) passed++;
    else failed++;
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${err ? `\n     ${String(err.stack ?? err).split('\n').slice(0, 6).join('\n     ')}` : ''}`);
  };
  try {
    assert.match(firstLine, /^http:\/\/127\.0\.0\.1:\d+\/fhir$/);
    BASE = firstLine;
    ORIGIN = new URL(firstLine).origin;
    report(true, `first stdout line is the base URL (${firstLine}), started in ${Date.now() - t0} ms`);
  } catch (err) {
    report(false, 'first stdout line is the base URL', err);
    child.kill('SIGKILL');
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(1);
  }
  for (const { name, fn } of tests) {
    try {
      await fn();
      report(true, name);
    } catch (err) {
      report(false, name, err);
    }
  }
  try {
    assert.deepEqual(extra, [], 'nothing but the base URL on stdout');
    child.kill('SIGTERM');
    const [code, signal] = await Promise.race([once(child, 'exit'), sleep(5000).then(() => ['timeout'])]);
    assert.equal(code, 0, `exit on SIGTERM: code ${code} signal ${signal}`);
    report(true, 'stdout clean after first line; clean exit on SIGTERM');
  } catch (err) {
    report(false, 'stdout clean after first line; clean exit on SIGTERM', err);
    child.kill('SIGKILL');
  }
  for (const line of info) console.log(`info: ${line}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  child?.kill('SIGKILL');
  process.exit(1);
});
