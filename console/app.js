// The minkd web console: plain JavaScript against the HTTP API of the same origin.
// No inline script or style (the page's Content-Security-Policy forbids them), no external
// fetch; user data is only ever set as text (never as HTML).
'use strict';

const $ = (id) => document.getElementById(id);
const session = window.sessionStorage;

// ---- state -------------------------------------------------------------------------------
const state = {
  view: 'overview',
  streamsAfter: null, // the `after` of the next stream page
  openStream: null,
  tail: null, // {source|timer, last} while the live tail runs
  tailLast: 0, // the last position shown by the tail: a resume starts after it
  timers: [],
  lastHead: null, // {position, at} for appends/s
  lastAppended: null,
};

function token() { return session.getItem('mink.token') || ''; }
function tenant() { return session.getItem('mink.tenant') || ''; }

// ---- helpers -----------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(c == null ? '' : String(c)));
  return el;
}

function showError(e) {
  const box = $('error');
  if (!e) { box.hidden = true; box.textContent = ''; return; }
  box.textContent = e.code ? `${e.code}: ${e.message}` : String(e.message || e);
  box.hidden = false;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// One request to the API with the session's token and tenant. Resolves to the parsed JSON (or
// text); rejects with an ApiError carrying the contract's error code.
async function api(method, path, { query, body, raw } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== '' && v != null) url.searchParams.set(k, v);
  const headers = { Accept: 'application/json' };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (tenant()) headers['Mink-Tenant'] = tenant();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) {
    let code = `http_${r.status}`, message = text.slice(0, 200);
    try { const e = JSON.parse(text).error; code = e.code; message = e.message; } catch (_) { /* not the error shape */ }
    throw new ApiError(r.status, code, message);
  }
  return raw ? text : JSON.parse(text);
}

function seg(s) { return encodeURIComponent(s); }
function fmtTime(t) { return t ? t.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-'; }
function compact(v) { return JSON.stringify(v); }
function pretty(v) { return JSON.stringify(v, null, 2); }

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function every(ms, fn) {
  const id = window.setInterval(fn, ms);
  state.timers.push(id);
}

function clearTimers() {
  for (const id of state.timers) window.clearInterval(id);
  state.timers = [];
}

// ---- navigation --------------------------------------------------------------------------
function show(view) {
  state.view = view;
  clearTimers();
  for (const s of document.querySelectorAll('.view')) s.hidden = s.id !== `view-${view}`;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.view === view);
  showError(null);
  const load = { overview: loadOverview, streams: loadStreams, log: loadLog, projections: loadProjections,
    readmodels: async () => {}, tenants: loadTenants }[view];
  load().catch(showError);
  if (view === 'overview') every(2000, () => loadOverview().catch(showError));
  if (view === 'projections') every(1000, () => loadProjections().catch(showError));
}

// ---- overview ----------------------------------------------------------------------------
function metric(text, name) {
  let total = null;
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) total = (total || 0) + Number(line.split(' ').pop());
  }
  return total;
}

async function loadOverview() {
  const [info, head] = await Promise.all([api('GET', '/v1/info'), api('GET', '/v1/events/head')]);
  let metrics = null;
  try { metrics = await api('GET', '/metrics', { raw: true }); } catch (_) { /* /metrics may need another token */ }
  const now = Date.now();
  let rate = '-';
  const appended = metrics ? metric(metrics, 'mink_events_appended_total') : null;
  if (appended != null && state.lastAppended) {
    rate = ((appended - state.lastAppended.n) / ((now - state.lastAppended.at) / 1000)).toFixed(1);
  } else if (state.lastHead) {
    rate = ((head.position - state.lastHead.position) / ((now - state.lastHead.at) / 1000)).toFixed(1);
  }
  if (appended != null) state.lastAppended = { n: appended, at: now };
  state.lastHead = { position: head.position, at: now };
  const facts = [
    ['Head position', head.position], ['Appends/s', rate],
    ['Subscribers', metrics ? metric(metrics, 'minkd_sse_subscribers') ?? '-' : '-'],
    ['Open connections', metrics ? metric(metrics, 'minkd_open_connections') ?? '-' : '-'],
    ['Storage', info.storage], ['Tenancy', info.tenancy], ['Tenant', tenant() || 'default'],
    ['Version', info.version], ['Uptime', `${info.uptimeSeconds} s`],
  ];
  $('overview').replaceChildren(...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', { id: `fact-${k.toLowerCase().replace(/\W+/g, '-')}` }, v)]));
}

// ---- streams -----------------------------------------------------------------------------
async function loadStreams(after) {
  const query = { category: $('streams-category').value, prefix: $('streams-prefix').value, after: after || '', limit: 50 };
  let rows;
  try {
    const page = await api('GET', '/v1/streams', { query });
    rows = page.streams;
    state.streamsAfter = page.next;
    $('streams-note').hidden = true;
  } catch (e) {
    // A server without stream listing (HTTP-API revision 1): the streams seen in the log.
    if (!(e instanceof ApiError && e.status === 404 && e.code === 'not_found')) throw e;
    const log = await api('GET', '/v1/events', { query: { after: 0, limit: 10000, category: query.category } });
    const seen = new Map();
    for (const ev of log.events) {
      if (query.prefix && !ev.streamId.startsWith(query.prefix)) continue;
      const s = seen.get(ev.streamId) || { streamId: ev.streamId, category: ev.streamId.split('-')[0], eventCount: 0, createdAt: ev.timestamp };
      s.version = ev.version; s.eventCount += 1; s.updatedAt = ev.timestamp;
      seen.set(ev.streamId, s);
    }
    rows = [...seen.values()].sort((a, b) => (a.streamId < b.streamId ? -1 : 1));
    state.streamsAfter = null;
    $('streams-note').textContent = 'This server cannot list streams: showing the streams of the first 10,000 events of the log.';
    $('streams-note').hidden = false;
  }
  $('streams-next').disabled = !state.streamsAfter;
  fill($('streams-table').tBodies[0], rows.map((s) => h('tr', {},
    h('td', {}, h('a', { href: '#', class: 'stream-link', onclick: (ev) => { ev.preventDefault(); openStream(s.streamId).catch(showError); } }, s.streamId)),
    h('td', {}, s.category), h('td', {}, s.version), h('td', {}, s.eventCount), h('td', {}, fmtTime(s.updatedAt)))));
}

async function openStream(id) {
  state.openStream = id;
  const page = await api('GET', `/v1/streams/${seg(id)}`, { query: { limit: 1000 } });
  $('stream-title').textContent = `${id} (version ${page.version})`;
  $('stream-detail').hidden = false;
  $('stream-events').replaceChildren(...page.events.map((ev) => h('li', {},
    h('div', { class: 'event-head' }, `#${ev.globalPosition} · v${ev.version} · ${ev.type} · ${fmtTime(ev.timestamp)}`),
    h('pre', {}, pretty(ev.data)),
    Object.keys(ev.metadata || {}).length ? h('pre', { class: 'meta' }, pretty(ev.metadata)) : '')));
}

async function deleteStream() {
  const id = state.openStream;
  if (!id) return;
  const hard = $('stream-delete-hard').checked;
  if (!window.confirm(`Delete stream ${id}${hard ? ' for ever (tombstone)' : ''}?`)) return;
  await api('DELETE', `/v1/streams/${seg(id)}`, { query: { hard } });
  $('stream-detail').hidden = true;
  state.openStream = null;
  await loadStreams();
}

// ---- global log and live tail ------------------------------------------------------------
function logRow(ev) {
  return h('tr', { 'data-position': ev.globalPosition },
    h('td', {}, ev.globalPosition), h('td', {}, ev.streamId), h('td', {}, ev.version), h('td', {}, ev.type),
    h('td', {}, fmtTime(ev.timestamp)), h('td', {}, h('code', {}, compact(ev.data))));
}

async function loadLog() {
  stopTail();
  const head = await api('GET', '/v1/events/head');
  const after = Math.max(0, head.position - 100);
  const page = await api('GET', '/v1/events', { query: { after, limit: 100, category: $('log-category').value, type: $('log-types').value } });
  fill($('log-table').tBodies[0], page.events.reverse().map(logRow));
  state.tailLast = Math.max(head.position, page.next);
}

function addTailEvent(ev) {
  if (ev.globalPosition <= state.tailLast) return; // never shown twice
  state.tailLast = ev.globalPosition;
  $('log-table').tBodies[0].prepend(logRow(ev));
}

// Starts (or resumes) the tail after the last position shown, so pausing loses nothing.
function startTail() {
  const category = $('log-category').value, types = $('log-types').value;
  if (!tenant() || tenant() === 'default') {
    // EventSource cannot send headers: the token travels as `access_token` (never logged by minkd).
    const path = category ? `/v1/subscriptions/categories/${seg(category)}` : '/v1/subscriptions/all';
    const url = new URL(path, window.location.origin);
    url.searchParams.set('after', state.tailLast);
    if (types) url.searchParams.set('type', types);
    if (token()) url.searchParams.set('access_token', token());
    const source = new EventSource(url);
    source.onmessage = (m) => addTailEvent(JSON.parse(m.data));
    source.addEventListener('caught-up', () => { $('tail-state').textContent = 'live'; });
    source.onerror = () => { $('tail-state').textContent = source.readyState === 2 ? 'stopped (refused)' : 'reconnecting…'; };
    state.tail = { source };
  } else {
    // Another tenant is chosen with the Mink-Tenant header, which an EventSource cannot send:
    // poll the log instead, after the last position shown.
    const poll = async () => {
      const page = await api('GET', '/v1/events', { query: { after: state.tailLast, limit: 1000, category, type: types } });
      page.events.forEach(addTailEvent);
      if (page.events.length === 0 && page.next > state.tailLast) state.tailLast = page.next;
      $('tail-state').textContent = 'live (polling)';
    };
    state.tail = { timer: window.setInterval(() => poll().catch(showError), 1000) };
    poll().catch(showError);
  }
  $('tail-toggle').textContent = 'Pause tail';
  $('tail-state').textContent = 'connecting…';
}

function stopTail() {
  if (!state.tail) return;
  if (state.tail.source) state.tail.source.close();
  if (state.tail.timer) window.clearInterval(state.tail.timer);
  state.tail = null;
  $('tail-toggle').textContent = 'Live tail';
  $('tail-state').textContent = `paused after ${state.tailLast}`;
}

// ---- projections -------------------------------------------------------------------------
async function projectionAction(name, action) {
  const status = await api('POST', `/v1/projections/${seg(name)}/${action}`);
  const row = document.querySelector(`tr[data-projection="${CSS.escape(name)}"] .status`);
  if (row && status.status) { row.textContent = status.status; row.className = `status status-${status.status}`; }
}

async function loadProjections() {
  const list = await api('GET', '/v1/projections');
  fill($('projections-table').tBodies[0], list.projections.map((p) => h('tr', { 'data-projection': p.name },
    h('td', {}, p.name), h('td', {}, p.mode), h('td', { class: `status status-${p.status}` }, p.status),
    h('td', {}, p.checkpoint), h('td', {}, p.head), h('td', {}, p.lag), h('td', { class: 'last-error' }, p.lastError || '-'),
    h('td', {}, ...['pause', 'resume', 'rebuild'].map((a) => h('button', {
      type: 'button', class: `action-${a}`, onclick: () => projectionAction(p.name, a).catch(showError),
    }, a))))));
}

// ---- read models: the query builder ------------------------------------------------------
const OPS = ['=', '!=', '>', '>=', '<', '<=', 'in', 'not in', 'like', 'contains', 'between', 'is null', 'is not null'];

function filterRow() {
  const row = h('div', { class: 'filter' },
    h('input', { class: 'f-field', placeholder: 'field (a.b)' }),
    h('select', { class: 'f-op' }, ...OPS.map((o) => h('option', { value: o }, o))),
    h('input', { class: 'f-value', placeholder: 'value (JSON or text)' }),
    h('button', { type: 'button', onclick: () => row.remove() }, '×'));
  return row;
}

function addGroup() {
  const list = h('div', { class: 'filters' }, filterRow());
  const group = h('fieldset', { class: 'group' }, h('legend', {}, 'all of (AND)'), list,
    h('button', { type: 'button', onclick: () => list.append(filterRow()) }, 'Add filter'),
    h('button', { type: 'button', onclick: () => group.remove() }, 'Remove group'));
  $('query-groups').append(group);
}

function readValue(text) {
  try { return JSON.parse(text); } catch (_) { return text; }
}

async function runQuery() {
  const where = [...document.querySelectorAll('#query-groups .group')].map((g) => [...g.querySelectorAll('.filter')]
    .filter((f) => f.querySelector('.f-field').value)
    .map((f) => {
      const op = f.querySelector('.f-op').value;
      const filter = { field: f.querySelector('.f-field').value, op };
      if (!op.startsWith('is ')) filter.value = readValue(f.querySelector('.f-value').value);
      return filter;
    })).filter((g) => g.length);
  const body = { where, limit: Number($('query-limit').value || 50) };
  const order = $('query-order').value.trim();
  if (order) body.orderBy = [{ field: order.replace(/^-/, ''), desc: order.startsWith('-') }];
  const result = await api('POST', `/v1/readmodels/${seg($('query-model').value)}/query`, { body });
  const columns = [];
  for (const item of result.items) for (const k of Object.keys(item || {})) if (!columns.includes(k)) columns.push(k);
  $('query-table').tHead.replaceChildren(h('tr', {}, ...columns.map((c) => h('th', {}, c))));
  fill($('query-table').tBodies[0], result.items.map((item) => h('tr', {}, ...columns.map((c) => {
    const v = item[c];
    return h('td', {}, v === undefined ? '' : typeof v === 'string' ? v : compact(v));
  }))));
  $('query-total').textContent = `${result.items.length} of ${result.total}`;
}

// ---- tenants -----------------------------------------------------------------------------
async function loadTenants() {
  let list;
  try { list = await api('GET', '/v1/admin/tenants'); } catch (e) {
    if (e instanceof ApiError && e.status === 403) {
      fill($('tenants-table').tBodies[0], [h('tr', {}, h('td', { colspan: 2 }, 'Tenant administration needs an admin token for every tenant.'))]);
      return;
    }
    throw e;
  }
  fill($('tenants-table').tBodies[0], list.tenants.map((t) => h('tr', {}, h('td', {}, t.id), h('td', {},
    t.id === 'default' ? '' : h('button', { type: 'button', class: 'danger', onclick: () => deleteTenant(t.id).catch(showError) }, 'Delete')))));
}

async function deleteTenant(id) {
  const typed = window.prompt(`Deleting tenant ${id} removes all its data. Type its ID to confirm:`);
  if (typed !== id) return;
  await api('DELETE', `/v1/admin/tenants/${seg(id)}`, { query: { confirm: typed } });
  await loadTenants();
}

// ---- wiring ------------------------------------------------------------------------------
function connect(ev) {
  ev.preventDefault();
  session.setItem('mink.token', $('token').value);
  session.setItem('mink.tenant', $('tenant').value.trim());
  state.lastHead = null; state.lastAppended = null;
  stopTail();
  show(state.view);
}

document.addEventListener('DOMContentLoaded', () => {
  $('token').value = token();
  $('tenant').value = tenant();
  $('login').addEventListener('submit', connect);
  $('disconnect').addEventListener('click', () => { session.clear(); $('token').value = ''; $('tenant').value = ''; stopTail(); show(state.view); });
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => { stopTail(); show(b.dataset.view); });
  $('streams-filter').addEventListener('submit', (e) => { e.preventDefault(); loadStreams().catch(showError); });
  $('streams-next').addEventListener('click', () => loadStreams(state.streamsAfter).catch(showError));
  $('stream-open-go').addEventListener('click', () => openStream($('stream-open').value).catch(showError));
  $('stream-delete').addEventListener('click', () => deleteStream().catch(showError));
  $('log-filter').addEventListener('submit', (e) => { e.preventDefault(); loadLog().catch(showError); });
  $('tail-toggle').addEventListener('click', () => (state.tail ? stopTail() : startTail()));
  $('query-add-group').addEventListener('click', addGroup);
  $('query-form').addEventListener('submit', (e) => { e.preventDefault(); runQuery().catch(showError); });
  $('tenant-form').addEventListener('submit', (e) => {
    e.preventDefault();
    api('POST', '/v1/admin/tenants', { body: { id: $('tenant-new').value } }).then(loadTenants).catch(showError);
  });
  addGroup();
  if (session.getItem('mink.token') === null) {
    // Nothing is asked of the server before the user chose a token (or none, with auth off):
    // a request without one would only be refused.
    for (const s of document.querySelectorAll('.view')) s.hidden = true;
    $('error').textContent = 'Enter a token (empty when the server has auth off) and a tenant, then Connect.';
    $('error').hidden = false;
    $('token').focus();
  } else {
    show('overview');
  }
});
