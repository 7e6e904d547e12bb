// nsqadmin's browser side: hash routes (#/topics, #/topics/T, #/topics/T/C, #/nodes, #/nodes/N,
// #/lookup, #/dead-letters, #/counter), snapshots pushed by the server over a WebSocket, rate history read from
// the server (which samples the cluster whether or not a page is open) and extended by each
// pushed sample, and actions sent to NSQ's nsqadmin API after a confirmation dialog. Delivery
// policies (nsq-ts nsqd) are edited in a dialog of their own, outside the redrawn page.

import { esc, fmtDuration } from './chart.js';
import {
  channelPage,
  counterPage,
  deadLettersPage,
  goDuration,
  hashFor,
  lookupPage,
  nodePage,
  nodesPage,
  topicPage,
  topicsPage,
} from './pages.js';

const base = location.pathname.replace(/[^/]*$/, '');
const api = `${base}api/`;
const RANGES = [
  { key: '5m', label: '5 min', ms: 5 * 60e3 },
  { key: '1h', label: '1 h', ms: 3600e3 },
  { key: '3h', label: '3 h', ms: 3 * 3600e3 },
];

const state = {
  snapshot: null,
  /** When the latest snapshot arrived (browser clock), to age its rates between pushes. */
  receivedAt: 0,
  lookup: null,
  range: RANGES[0],
  /** { times: [ms], series: { key: [rate|null] } }: the server's history, extended by pushes. */
  history: { times: [], series: {} },
  /** The page last drawn. */
  html: '',
};

const $ = (selector) => document.querySelector(selector);

function currentRoute() {
  const parts = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  if (parts[0] === 'topics' && parts.length === 3) return { page: 'channel', topic: parts[1], channel: parts[2] };
  if (parts[0] === 'topics' && parts.length === 2) return { page: 'topic', topic: parts[1] };
  if (parts[0] === 'nodes' && parts.length === 2) return { page: 'node', node: parts[1] };
  if (parts[0] === 'nodes') return { page: 'nodes' };
  if (parts[0] === 'lookup') return { page: 'lookup' };
  if (parts[0] === 'counter') return { page: 'counter' };
  if (parts[0] === 'dead-letters') return { page: 'dead-letters' };
  return { page: 'topics' };
}

// ---------------------------------------------------------------- data

async function getJson(path) {
  const res = await fetch(`${api}${path}`);
  const body = await res.json();
  if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
  return body;
}

async function loadHistory() {
  try {
    const h = await getJson(`history?since=${Date.now() - state.range.ms}`);
    state.history = { times: h.times, series: h.series };
  } catch (err) {
    notice(`Could not load the rate history: ${err.message}`);
  }
  render();
}

/** A pushed sample (its rates measured up to `at`) becomes the newest point of every series. */
function appendSample(snap) {
  const h = state.history;
  if (snap.ratesAt === null || snap.ratesAt !== snap.at || h.times.at(-1) >= snap.at) return;
  const values = new Map();
  values.set('all', snap.totalRate);
  for (const n of snap.nodes) values.set(`n:${n.id}`, n.ingressRate);
  for (const t of snap.topics) {
    values.set(`t:${t.name}`, t.ingressRate);
    for (const c of t.channels) {
      values.set(`c:${t.name}/${c.name}`, c.ingressRate);
      values.set(`e:${t.name}/${c.name}`, c.egressRate);
    }
  }
  const length = h.times.length;
  h.times.push(snap.at);
  for (const [key, points] of Object.entries(h.series)) points.push(values.get(key) ?? null);
  for (const [key, rate] of values) {
    if (!(key in h.series)) h.series[key] = [...Array(length).fill(null), rate];
  }
  const from = snap.at - state.range.ms;
  let drop = 0;
  while (drop < h.times.length && h.times[drop] < from) drop++;
  if (drop > 0) {
    h.times.splice(0, drop);
    for (const points of Object.values(h.series)) points.splice(0, drop);
  }
}

function points(key) {
  const series = state.history.series[key];
  return state.history.times.map((at, i) => ({ at, rate: series?.[i] ?? null }));
}

/** How old the rates on screen are (ms), counting the time since the snapshot arrived. */
function ratesAge() {
  const s = state.snapshot;
  if (s === null || s.ratesAt === null) return null;
  return s.at - s.ratesAt + (Date.now() - state.receivedAt);
}

function isStale() {
  const age = ratesAge();
  return age !== null && age > 3 * Math.max(state.snapshot.sampleIntervalMs, 1000);
}

function onSnapshot(snapshot) {
  state.snapshot = snapshot;
  state.receivedAt = Date.now();
  appendSample(snapshot);
  renderErrors(snapshot.errors);
  if (currentRoute().page !== 'lookup') render();
  renderFreshness();
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}${api}ws`);
  const live = $('#live');
  ws.addEventListener('open', () => {
    live.className = 'live ok';
    renderFreshness();
    void loadHistory();
  });
  ws.addEventListener('message', (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === 'snapshot') onSnapshot(msg.snapshot);
  });
  ws.addEventListener('close', () => {
    live.textContent = 'disconnected, retrying…';
    live.className = 'live down';
    setTimeout(connect, 1000);
  });
}

async function loadLookup() {
  try {
    state.lookup = await getJson('lookup');
    renderErrors(state.lookup.errors);
  } catch (err) {
    state.lookup = { lookupds: [], topics: [], errors: [{ source: 'lookupd', address: '', message: err.message }] };
  }
  render();
}

// ---------------------------------------------------------------- rendering

function renderErrors(errors) {
  const box = $('#errors');
  if (errors.length === 0) {
    box.innerHTML = '';
    return;
  }
  box.innerHTML = `<strong>${errors.length} upstream error${errors.length === 1 ? '' : 's'}</strong><ul>${errors
    .map((e) => `<li>${esc(e.source)} ${esc(e.address)}: ${esc(e.message)}</li>`)
    .join('')}</ul>`;
}

/** The header says how old the rates are; a banner says so when they are older than they should be. */
function renderFreshness() {
  const live = $('#live');
  const age = ratesAge();
  if (live.classList.contains('ok')) {
    live.textContent = age === null ? 'live · first sample pending' : `live · rates sampled ${fmtDuration(age)} ago`;
  }
  const stale = $('#stale');
  if (isStale()) {
    const at = new Date(state.snapshot.ratesAt).toLocaleTimeString();
    stale.textContent = `Rates are from ${at} (${fmtDuration(age)} ago), not from now: nsqadmin has not sampled the cluster since.`;
    stale.hidden = false;
  } else stale.hidden = true;
}

function notice(text) {
  $('#notice').textContent = text;
}

function render() {
  const route = currentRoute();
  for (const a of document.querySelectorAll('[data-nav]')) {
    const nav = a.dataset.nav;
    const active =
      nav === route.page ||
      (nav === 'topics' && (route.page === 'topic' || route.page === 'channel')) ||
      (nav === 'nodes' && route.page === 'node');
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const snap = state.snapshot;
  const ctx = {
    now: snap?.at ?? Date.now(),
    ratesAt: snap?.ratesAt ?? null,
    stale: isStale(),
    range: state.range,
    ranges: RANGES,
    lookup: state.lookup,
    points,
  };
  let html;
  if (route.page === 'lookup') html = lookupPage(state.lookup, snap);
  else if (snap === null) html = '<p>Loading…</p>';
  else if (route.page === 'topic') html = topicPage(snap, route.topic, ctx);
  else if (route.page === 'channel') html = channelPage(snap, route.topic, route.channel, ctx);
  else if (route.page === 'nodes') html = nodesPage(snap, ctx);
  else if (route.page === 'node') html = nodePage(snap, route.node, ctx);
  else if (route.page === 'counter') html = counterPage(snap, ctx);
  else if (route.page === 'dead-letters') html = deadLettersPage(snap);
  else html = topicsPage(snap, ctx);
  // Only a changed page is redrawn, so a page that did not change keeps its DOM (and a click in it).
  if (html !== state.html) {
    const focusedId = document.activeElement?.id;
    $('#main').innerHTML = html;
    state.html = html;
    if (focusedId) document.getElementById(focusedId)?.focus();
  }
  const title = {
    topics: 'Topics',
    nodes: 'Nodes',
    lookup: 'Lookup',
    counter: 'Counter',
    'dead-letters': 'Dead letters',
  }[route.page];
  document.title = `nsqadmin · ${title ?? route.channel ?? route.topic ?? route.node}`;
}

// ---------------------------------------------------------------- actions

function confirmAction(text) {
  const dialog = $('#confirm');
  $('#confirm-text').textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

/**
 * A state-changing request as the server requires it: a JSON body and X-Requested-With, which a
 * page on another origin cannot send without a CORS preflight nsqadmin never grants.
 */
function send(method, path, body) {
  return fetch(`${api}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json', 'X-Requested-With': 'nsqadmin' },
    body: JSON.stringify(body ?? {}),
  });
}

async function login() {
  const password = window.prompt('nsqadmin password (required for admin actions)');
  if (password === null || password === '') return false;
  const res = await send('POST', 'login', { password });
  if (!res.ok) notice('Wrong password.');
  return res.ok;
}

/** The request NSQ's nsqadmin API (or, for delivery policies, nsq-ts's) takes for an action. */
function request({ kind, action, topic, channel, node, to, since, settings }) {
  if (action === 'redrive') return ['POST', 'topic/redrive', { topic, to }];
  if (action === 'replay') return ['POST', 'channel/replay', { topic, channel, since }];
  if (action === 'config')
    return ['POST', `${kind}/config`, { topic, ...(channel === undefined ? {} : { channel }), ...settings }];
  const t = encodeURIComponent(topic);
  const path = kind === 'channel' ? `topics/${t}/${encodeURIComponent(channel)}` : `topics/${t}`;
  if (action === 'create') return ['POST', 'topics', kind === 'channel' ? { topic, channel } : { topic }];
  if (action === 'delete') return ['DELETE', path, {}];
  if (action === 'tombstone') return ['DELETE', `nodes/${encodeURIComponent(node)}`, { topic }];
  return ['POST', path, node === undefined ? { action } : { action, node }];
}

/** Words for what an action does beyond its name, in the confirmation. */
function consequence({ action, since }) {
  if (action === 'redrive') return ' (move every dead letter it holds, each once)';
  if (action === 'replay')
    return ` from ${new Date(Number(since)).toISOString()} (its consumers receive those messages again)`;
  return '';
}

async function runAction(data) {
  const { kind, action, topic, channel, node, to } = data;
  const target = kind === 'channel' ? `channel ${topic}/${channel}` : `topic ${topic}`;
  const where = node === undefined ? '' : action === 'tombstone' ? ` on ${node}` : ` on ${node} only`;
  const what = `${action} ${target}${to === undefined ? '' : ` into ${to}`}${where}`;
  const unconfirmed = action === 'create' || action === 'config';
  if (!unconfirmed && !(await confirmAction(`Really ${what}${consequence(data)}?`))) return;
  const [method, path, body] = request(data);
  let res = await send(method, path, body);
  // --admin-password-file: a 401 asks for the password once, logs in (session cookie) and retries.
  if (res.status === 401 && (await login())) res = await send(method, path, body);
  const answer = await res.json().catch(() => ({}));
  if (res.status === 401) notice(`Not allowed to ${what}: log in first.`);
  else if (res.status === 403) notice(`Not allowed to ${what}: ${answer.reason ?? 'admin users only'}.`);
  else if (!res.ok) notice(`Could not ${what}: ${answer.message ?? res.status}`);
  else if (answer.errors.length > 0)
    notice(
      `${what}: ${answer.errors.length} upstream error(s): ${answer.errors.map((e) => `${e.address} ${e.message}`).join('; ')}`,
    );
  else notice(`Done: ${what}${answer.moved === undefined ? '' : `: ${answer.moved} dead letter(s) moved`}.`);
  if (res.ok && action === 'delete') location.hash = kind === 'channel' ? hashFor('topics', topic) : '#/topics';
  if (state.lookup !== null || action === 'create') await loadLookup();
}

// ---------------------------------------------------------------- delivery policies

function field({ name, label, value, hint, type = 'text', attrs = '' }) {
  const id = `policy-${name}`;
  return `<label for="${id}">${esc(label)}<input id="${id}" name="${name}" type="${type}" value="${esc(value)}" data-initial="${esc(value)}" ${attrs}>
    <span class="hint">${esc(hint)}</span></label>`;
}

const DURATION_HINT = 'a Go duration (90s, 24h, 1h30m); 0 turns it off';

/** The dialog's fields for a topic's or channel's settings, or for a replay. */
function policyFields(kind, topic, channel) {
  const snap = state.snapshot;
  const t = snap?.topics.find((x) => x.name === topic);
  if (kind === 'replay') {
    return field({
      name: 'since',
      label: 'Replay from',
      value: '1h',
      hint: 'RFC 3339 (2024-06-01T12:00:00Z), unix milliseconds, or a duration ago (30m, 2h)',
      attrs: 'required',
    });
  }
  if (kind === 'channel') {
    const p = t?.channels.find((c) => c.name === channel)?.policy;
    if (!p) return null;
    return (
      field({
        name: 'max_attempts',
        label: 'Max attempts',
        value: String(p.maxAttempts),
        hint: '0: unlimited (NSQ retries forever)',
        type: 'number',
        attrs: 'min="0" max="65535" required',
      }) +
      field({
        name: 'dead_letter_topic',
        label: 'Dead-letter topic',
        value: p.deadLetterTopic,
        hint: 'where messages go after their last attempt; empty: dropped',
        attrs: 'pattern="[.a-zA-Z0-9_\\-]+(#ephemeral)?" maxlength="64"',
      })
    );
  }
  const p = t?.policy;
  if (!p) return null;
  const overflow = ['reject', 'drop_oldest']
    .map((o) => `<option value="${o}"${o === p.overflow ? ' selected' : ''}>${o}</option>`)
    .join('');
  const durations = [
    ['message_ttl', 'Message TTL', p.messageTtlMs],
    ['retention', 'Retention', p.retentionMs],
  ].filter(([, , ms]) => ms !== null);
  return (
    field({
      name: 'max_depth',
      label: 'Max depth',
      value: String(p.maxDepth),
      hint: "messages in the deepest channel's backlog; 0: no cap",
      type: 'number',
      attrs: 'min="0" required',
    }) +
    field({
      name: 'max_bytes',
      label: 'Max bytes',
      value: String(p.maxBytes),
      hint: 'the same cap in bytes; 0: no cap',
      type: 'number',
      attrs: 'min="0" required',
    }) +
    `<label for="policy-overflow">Overflow<select id="policy-overflow" name="overflow" data-initial="${esc(p.overflow)}">${overflow}</select>
      <span class="hint">at the cap: refuse publishes, or drop the oldest messages</span></label>` +
    durations
      .map(([name, label, ms]) => field({ name, label, value: ms === 0 ? '0' : goDuration(ms), hint: DURATION_HINT }))
      .join('')
  );
}

/** Opens a dialog; resolves with its fields' values, or null when cancelled. */
function policyDialog(title, okLabel, fields) {
  const dialog = $('#policy');
  $('#policy-title').textContent = title;
  $('#policy-ok').textContent = okLabel;
  $('#policy-fields').innerHTML = fields;
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        if (dialog.returnValue !== 'ok') return resolve(null);
        const values = {};
        for (const el of $('#policy-fields').querySelectorAll('input, select'))
          values[el.name] = { value: el.value, initial: el.dataset.initial };
        resolve(values);
      },
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
  });
}

/** `1h30m` → ms, or null. */
function durationMs(text) {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return null;
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
  return parts.reduce((sum, [, n, u]) => sum + Number(n) * unit[u], 0);
}

/** `since` as unix ms: given so, as RFC 3339, or as a duration before now; null when it is none of these. */
function sinceMs(text) {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const ago = durationMs(t);
  if (ago !== null) return Date.now() - ago;
  const at = /^\d{4}-\d\d-\d\dT/.test(t) ? Date.parse(t) : Number.NaN;
  return Number.isNaN(at) ? null : at;
}

async function editPolicy({ policy: kind, topic, channel }) {
  const what = kind === 'topic' ? `topic ${topic}` : `channel ${topic}/${channel}`;
  const fields = policyFields(kind, topic, channel);
  if (fields === null) return notice(`No delivery policy is reported for ${what}.`);
  if (kind === 'replay') {
    const values = await policyDialog(`Replay ${what}`, 'Replay…', fields);
    if (values === null) return;
    const since = sinceMs(values.since.value);
    if (since === null) return notice(`Not a time: ${values.since.value}`);
    return runAction({ kind: 'channel', action: 'replay', topic, channel, since: String(since) });
  }
  const values = await policyDialog(`Delivery policy of ${what}`, 'Save', fields);
  if (values === null) return;
  const settings = Object.fromEntries(
    Object.entries(values)
      .filter(([, v]) => v.value !== v.initial)
      .map(([k, v]) => [k, v.value]),
  );
  if (Object.keys(settings).length === 0) return notice(`Nothing changed for ${what}.`);
  return runAction({ kind, action: 'config', topic, channel, settings });
}

document.addEventListener('click', (event) => {
  const range = event.target.closest('button[data-range]');
  if (range !== null) {
    state.range = RANGES.find((r) => r.key === range.dataset.range) ?? RANGES[0];
    void loadHistory();
    return;
  }
  const policy = event.target.closest('button[data-policy]');
  if (policy !== null) {
    void editPolicy({ ...policy.dataset });
    return;
  }
  const button = event.target.closest('button[data-action]');
  if (button !== null) void runAction({ ...button.dataset });
  else if (event.target.closest('#lookup-refresh') !== null) void loadLookup();
});

document.addEventListener('submit', (event) => {
  const form = event.target;
  if (form.id !== 'create-topic' && form.id !== 'create-channel') return;
  event.preventDefault();
  const data = new FormData(form);
  const topic = String(data.get('topic'));
  if (form.id === 'create-topic') void runAction({ kind: 'topic', action: 'create', topic });
  else void runAction({ kind: 'channel', action: 'create', topic, channel: String(data.get('channel')) });
});

/** Pages about things the nsqds may not have (lookup, a topic or channel only lookupd lists) need lookupd's view. */
function needsLookup(route) {
  if (route.page === 'lookup') return true;
  const snap = state.snapshot;
  if (snap === null || (route.page !== 'topic' && route.page !== 'channel')) return false;
  const t = snap.topics.find((x) => x.name === route.topic);
  return t === undefined || (route.page === 'channel' && !t.channels.some((c) => c.name === route.channel));
}

window.addEventListener('hashchange', () => {
  notice('');
  if (needsLookup(currentRoute())) void loadLookup();
  render();
  $('#main').focus();
});

setInterval(renderFreshness, 1000);
render();
getJson('snapshot').then(
  (snapshot) => {
    if (state.snapshot === null) onSnapshot(snapshot);
    if (needsLookup(currentRoute())) void loadLookup();
  },
  (err) => renderErrors([{ source: 'nsqadmin', address: '', message: err.message }]),
);
connect();
