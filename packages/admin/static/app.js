// nsqadmin's browser side: hash routes (#/topics, #/topics/T, #/topics/T/C, #/nodes, #/lookup),
// snapshots pushed by the server over a WebSocket, rate history kept here for the charts, and
// actions POSTed to the server's /api after a confirmation dialog.

const base = location.pathname.replace(/[^/]*$/, '');
const api = `${base}api/`;
const HISTORY_MS = 5 * 60 * 1000;

const state = {
  snapshot: null,
  lookup: null,
  /** key (`t:topic`, `c:topic/channel`) → [{ at, rate }] for the last HISTORY_MS */
  history: new Map(),
};

const $ = (selector) => document.querySelector(selector);

function esc(value) {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

const fmt = (n) => Number(n).toLocaleString('en-US');
const fmtRate = (r) => (r >= 100 ? fmt(Math.round(r)) : r.toFixed(1));

function hashFor(...parts) {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

function currentRoute() {
  const parts = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  if (parts[0] === 'topics' && parts.length === 3) return { page: 'channel', topic: parts[1], channel: parts[2] };
  if (parts[0] === 'topics' && parts.length === 2) return { page: 'topic', topic: parts[1] };
  if (parts[0] === 'nodes') return { page: 'nodes' };
  if (parts[0] === 'lookup') return { page: 'lookup' };
  return { page: 'topics' };
}

// ---------------------------------------------------------------- data

function record(snapshot) {
  const push = (key, rate) => {
    const points = state.history.get(key) ?? [];
    points.push({ at: snapshot.at, rate });
    while (points.length > 0 && points[0].at < snapshot.at - HISTORY_MS) points.shift();
    state.history.set(key, points);
  };
  for (const t of snapshot.topics) {
    push(`t:${t.name}`, t.rate);
    for (const c of t.channels) push(`c:${t.name}/${c.name}`, c.rate);
  }
}

function onSnapshot(snapshot, live) {
  if (live) record(snapshot);
  state.snapshot = snapshot;
  renderErrors(snapshot.errors);
  if (currentRoute().page !== 'lookup') render();
}

function connect() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}${api}ws`);
  const live = $('#live');
  ws.addEventListener('open', () => {
    live.textContent = 'live';
    live.className = 'live ok';
  });
  ws.addEventListener('message', (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === 'snapshot') onSnapshot(msg.snapshot, true);
  });
  ws.addEventListener('close', () => {
    live.textContent = 'disconnected, retrying…';
    live.className = 'live down';
    setTimeout(connect, 1000);
  });
}

async function getJson(path) {
  const res = await fetch(`${api}${path}`);
  const body = await res.json();
  if (!res.ok) throw new Error(body.message ?? `HTTP ${res.status}`);
  return body;
}

async function loadLookup() {
  try {
    state.lookup = await getJson('lookup');
    renderErrors(state.lookup.errors);
  } catch (err) {
    state.lookup = { lookupds: [], topics: [], errors: [{ source: 'lookupd', address: '', message: err.message }] };
  }
  if (currentRoute().page === 'lookup') render();
}

// ---------------------------------------------------------------- rendering helpers

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

function notice(text) {
  $('#notice').textContent = text;
}

/** The chart's time span: the history kept so far, at least 10 s and at most HISTORY_MS. */
function span(points, now) {
  return points.length === 0 ? HISTORY_MS : Math.min(HISTORY_MS, Math.max(10_000, now - points[0].at));
}

function spanText(ms) {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

function chart(key, label) {
  const points = state.history.get(key) ?? [];
  const w = 240;
  const h = 48;
  const max = Math.max(1, ...points.map((p) => p.rate));
  const now = state.snapshot?.at ?? Date.now();
  const ms = span(points, now);
  const xy = points
    .map((p) => {
      const x = w - ((now - p.at) / ms) * w;
      const y = h - 2 - (p.rate / max) * (h - 4);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    })
    .join(' ');
  const current = points.length > 0 ? points[points.length - 1].rate : 0;
  const desc = `${label}: ${fmtRate(current)} messages/s now, peak ${fmtRate(max)}/s over the last ${spanText(ms)}`;
  return `<figure class="chart"><svg width="${w}" height="${h}" role="img" aria-label="${esc(desc)}" viewBox="0 0 ${w} ${h}">
    <line x1="0" y1="${h - 1}" x2="${w}" y2="${h - 1}" stroke="#d8dbe2"/>
    <polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points="${xy}"/>
  </svg><figcaption class="caption">${esc(label)} · ${fmtRate(current)}/s · peak ${fmtRate(max)}/s · last ${spanText(ms)}</figcaption></figure>`;
}

function spark(key) {
  const points = state.history.get(key) ?? [];
  const w = 100;
  const h = 20;
  const max = Math.max(1, ...points.map((p) => p.rate));
  const now = state.snapshot?.at ?? Date.now();
  const ms = span(points, now);
  const xy = points
    .map((p) => `${(w - ((now - p.at) / ms) * w).toFixed(1)},${(h - 1 - (p.rate / max) * (h - 2)).toFixed(1)}`)
    .join(' ');
  return `<svg width="${w}" height="${h}" aria-hidden="true"><polyline fill="none" stroke="#1f5fbf" stroke-width="1.2" points="${xy}"/></svg>`;
}

function stat(label, value, id) {
  return `<div class="stat"><div class="label">${esc(label)}</div><div class="value" data-testid="${id}">${value}</div></div>`;
}

function pausedBadge(paused) {
  return paused ? ' <span class="badge paused">paused</span>' : '';
}

function actionButton(label, data, danger = false) {
  const attrs = Object.entries(data)
    .map(([k, v]) => `data-${k}="${esc(v)}"`)
    .join(' ');
  const id = `btn-${Object.values(data).join('-')}`.replace(/[^\w-]/g, '_');
  return `<button type="button" id="${esc(id)}" class="${danger ? 'danger' : ''}" ${attrs}>${esc(label)}</button>`;
}

// ---------------------------------------------------------------- pages

function topicsPage(snap) {
  const rows = snap.topics
    .map((t) => {
      const nodes = t.nodes
        .map((n) => `${esc(n.node)}: ${fmt(n.depth)} deep, ${fmt(n.messageCount)} msgs${n.paused ? ' (paused)' : ''}`)
        .join(' · ');
      return `<tr>
        <td><a href="${hashFor('topics', t.name)}">${esc(t.name)}</a>${pausedBadge(t.paused)}</td>
        <td class="num">${fmt(t.depth)}</td>
        <td class="num" data-testid="topic-messages-${esc(t.name)}">${fmt(t.messageCount)}</td>
        <td class="num">${fmtRate(t.rate)}/s</td>
        <td>${spark(`t:${t.name}`)}</td>
        <td class="num">${t.channelCount}</td>
        <td class="num">${t.nodes.length}</td>
      </tr>
      <tr class="sub"><td colspan="7">${nodes}</td></tr>`;
    })
    .join('');
  return `<h1>Topics</h1>
    ${
      snap.topics.length === 0
        ? '<p class="muted">No topics yet.</p>'
        : `<table><caption class="muted" style="text-align:left">Per-node breakdown under each topic</caption>
      <thead><tr><th scope="col">Topic</th><th scope="col" class="num">Depth</th><th scope="col" class="num">Messages</th>
      <th scope="col" class="num">Rate</th><th scope="col">Rate history</th><th scope="col" class="num">Channels</th><th scope="col" class="num">Nodes</th></tr></thead>
      <tbody>${rows}</tbody></table>`
    }`;
}

function topicPage(snap, name) {
  const t = snap.topics.find((x) => x.name === name);
  const crumbs = `<p class="crumbs"><a href="#/topics">Topics</a> / ${esc(name)}</p>`;
  if (t === undefined) return `${crumbs}<h1>Topic ${esc(name)}</h1><p>This topic is on no reachable node.</p>`;
  const nodes = t.nodes
    .map(
      (n) => `<tr><td>${esc(n.node)}${pausedBadge(n.paused)}</td><td class="num">${fmt(n.depth)}</td>
      <td class="num">${fmt(n.depth - n.backendDepth)}</td><td class="num">${fmt(n.backendDepth)}</td>
      <td class="num">${fmt(n.messageCount)}</td><td class="num">${n.channelCount}</td>
      <td>${actionButton('Tombstone', { kind: 'topic', action: 'tombstone', topic: t.name, node: n.node }, true)}</td></tr>`,
    )
    .join('');
  const channels = t.channels
    .map(
      (c) => `<tr><td><a href="${hashFor('topics', t.name, c.name)}">${esc(c.name)}</a>${pausedBadge(c.paused)}</td>
      <td class="num">${fmt(c.depth)}</td><td class="num">${fmt(c.inFlightCount)}</td><td class="num">${fmt(c.deferredCount)}</td>
      <td class="num">${fmt(c.requeueCount)}</td><td class="num">${fmt(c.timeoutCount)}</td>
      <td class="num">${fmt(c.messageCount)}</td><td class="num">${fmtRate(c.rate)}/s</td><td>${spark(`c:${t.name}/${c.name}`)}</td>
      <td class="num">${fmt(c.clientCount)}</td></tr>`,
    )
    .join('');
  const data = { kind: 'topic', topic: t.name };
  return `${crumbs}<h1>Topic ${esc(t.name)}${pausedBadge(t.paused)}</h1>
    <div class="stats">${stat('Depth', fmt(t.depth), 'topic-depth')}${stat('Messages', fmt(t.messageCount), 'topic-messages')}
      ${stat('Rate', `${fmtRate(t.rate)}/s`, 'topic-rate')}${stat('Channels', t.channelCount, 'topic-channels')}</div>
    ${chart(`t:${t.name}`, `Topic ${t.name}`)}
    <div class="actions">
      ${t.paused ? actionButton('Unpause topic', { ...data, action: 'unpause' }) : actionButton('Pause topic', { ...data, action: 'pause' })}
      ${actionButton('Empty topic', { ...data, action: 'empty' }, true)}
      ${actionButton('Delete topic', { ...data, action: 'delete' }, true)}
    </div>
    <h2>Nodes</h2>
    <table><thead><tr><th scope="col">Node</th><th scope="col" class="num">Depth</th><th scope="col" class="num">Memory</th>
    <th scope="col" class="num">Disk</th><th scope="col" class="num">Messages</th><th scope="col" class="num">Channels</th><th scope="col">Action</th></tr></thead>
    <tbody>${nodes}</tbody></table>
    <h2>Channels</h2>
    ${
      t.channels.length === 0
        ? '<p class="muted">No channels.</p>'
        : `<table><thead><tr><th scope="col">Channel</th><th scope="col" class="num">Depth</th><th scope="col" class="num">In flight</th>
      <th scope="col" class="num">Deferred</th><th scope="col" class="num">Requeued</th><th scope="col" class="num">Timed out</th>
      <th scope="col" class="num">Messages</th><th scope="col" class="num">Rate</th><th scope="col">Rate history</th><th scope="col" class="num">Clients</th></tr></thead>
      <tbody>${channels}</tbody></table>`
    }`;
}

function channelPage(snap, topic, name) {
  const c = snap.topics.find((x) => x.name === topic)?.channels.find((x) => x.name === name);
  const crumbs = `<p class="crumbs"><a href="#/topics">Topics</a> / <a href="${hashFor('topics', topic)}">${esc(topic)}</a> / ${esc(name)}</p>`;
  if (c === undefined) return `${crumbs}<h1>Channel ${esc(name)}</h1><p>This channel is on no reachable node.</p>`;
  const nodes = c.nodes
    .map(
      (n) => `<tr><td>${esc(n.node)}${pausedBadge(n.paused)}</td><td class="num">${fmt(n.depth)}</td>
      <td class="num">${fmt(n.inFlightCount)}</td><td class="num">${fmt(n.deferredCount)}</td><td class="num">${fmt(n.requeueCount)}</td>
      <td class="num">${fmt(n.timeoutCount)}</td><td class="num">${fmt(n.messageCount)}</td><td class="num">${fmt(n.clientCount)}</td></tr>`,
    )
    .join('');
  const now = Date.now() / 1000;
  const clients = c.clients
    .map((k) => {
      const flags = [k.tls ? 'TLS' : '', k.snappy ? 'snappy' : '', k.deflate ? 'deflate' : ''].filter((f) => f !== '');
      return `<tr><td>${esc(k.hostname)}<div class="muted">${esc(k.remoteAddress)}</div></td><td>${esc(k.node)}</td>
      <td>${esc(k.userAgent || k.version)}</td><td>${flags.length === 0 ? '—' : esc(flags.join(', '))}</td>
      <td class="num">${fmt(k.readyCount)}</td><td class="num">${fmt(k.inFlightCount)}</td><td class="num">${fmt(k.messageCount)}</td>
      <td class="num">${fmt(k.finishCount)}</td><td class="num">${fmt(k.requeueCount)}</td>
      <td class="num">${fmt(Math.max(0, Math.round(now - k.connectTs)))} s</td></tr>`;
    })
    .join('');
  const data = { kind: 'channel', topic, channel: name };
  return `${crumbs}<h1>Channel ${esc(topic)} / ${esc(name)}${pausedBadge(c.paused)}</h1>
    <div class="stats">${stat('Depth', fmt(c.depth), 'channel-depth')}${stat('In flight', fmt(c.inFlightCount), 'channel-inflight')}
      ${stat('Deferred', fmt(c.deferredCount), 'channel-deferred')}${stat('Requeued', fmt(c.requeueCount), 'channel-requeued')}
      ${stat('Timed out', fmt(c.timeoutCount), 'channel-timedout')}${stat('Messages', fmt(c.messageCount), 'channel-messages')}
      ${stat('Rate', `${fmtRate(c.rate)}/s`, 'channel-rate')}${stat('Clients', fmt(c.clientCount), 'channel-clients')}</div>
    ${chart(`c:${topic}/${name}`, `Channel ${name}`)}
    <div class="actions">
      ${c.paused ? actionButton('Unpause channel', { ...data, action: 'unpause' }) : actionButton('Pause channel', { ...data, action: 'pause' })}
      ${actionButton('Empty channel', { ...data, action: 'empty' }, true)}
      ${actionButton('Delete channel', { ...data, action: 'delete' }, true)}
    </div>
    <h2>Nodes</h2>
    <table><thead><tr><th scope="col">Node</th><th scope="col" class="num">Depth</th><th scope="col" class="num">In flight</th>
    <th scope="col" class="num">Deferred</th><th scope="col" class="num">Requeued</th><th scope="col" class="num">Timed out</th>
    <th scope="col" class="num">Messages</th><th scope="col" class="num">Clients</th></tr></thead><tbody>${nodes}</tbody></table>
    <h2>Clients</h2>
    ${
      c.clients.length === 0
        ? '<p class="muted">No clients connected.</p>'
        : `<table><thead><tr><th scope="col">Client</th><th scope="col">Node</th><th scope="col">User agent</th><th scope="col">TLS / compression</th>
      <th scope="col" class="num">RDY</th><th scope="col" class="num">In flight</th><th scope="col" class="num">Messages</th>
      <th scope="col" class="num">Finished</th><th scope="col" class="num">Requeued</th><th scope="col" class="num">Connected</th></tr></thead>
      <tbody>${clients}</tbody></table>`
    }`;
}

function nodesPage(snap) {
  const rows = snap.nodes
    .map((n) => {
      const topics = n.topics
        .map((t) => `${esc(t.name)}${t.tombstoned ? ' <span class="badge bad">tombstoned</span>' : ''}`)
        .join(', ');
      return `<tr><td>${esc(n.hostname)}<div class="muted">${esc(n.remoteAddress)}</div></td><td>${esc(n.id)}</td>
        <td class="num">${n.tcpPort}</td><td>${esc(n.version)}${n.outOfDate ? ' <span class="badge warn">out of date</span>' : ''}</td>
        <td>${n.reachable ? 'yes' : '<span class="badge bad">unreachable</span>'}</td>
        <td class="num">${n.topics.length}</td><td>${topics || '<span class="muted">none</span>'}</td></tr>`;
    })
    .join('');
  return `<h1>Nodes</h1>
    ${
      snap.nodes.length === 0
        ? '<p class="muted">No nsqd nodes found.</p>'
        : `<table><thead><tr><th scope="col">Hostname</th><th scope="col">Broadcast address (HTTP)</th><th scope="col" class="num">TCP port</th>
      <th scope="col">Version</th><th scope="col">Reachable</th><th scope="col" class="num">Topics</th><th scope="col">Topic names</th></tr></thead>
      <tbody>${rows}</tbody></table>`
    }`;
}

function lookupPage(lookup) {
  if (lookup === null) return '<h1>Lookup</h1><p>Loading…</p>';
  const rows = lookup.topics
    .map(
      (t) => `<tr><td><a href="${hashFor('topics', t.name)}">${esc(t.name)}</a></td>
      <td>${t.channels.map((c) => `<a href="${hashFor('topics', t.name, c)}">${esc(c)}</a>`).join(', ') || '<span class="muted">none</span>'}</td></tr>`,
    )
    .join('');
  return `<h1>Lookup</h1>
    <p class="muted">nsqlookupd: ${lookup.lookupds.map(esc).join(', ') || 'none configured'}</p>
    <div class="actions"><button type="button" id="lookup-refresh">Refresh</button></div>
    <h2>Create</h2>
    <form class="inline" id="create-topic">
      <label for="new-topic">Topic<input id="new-topic" name="topic" required pattern="[.a-zA-Z0-9_\\-]+(#ephemeral)?" maxlength="64"></label>
      <button type="submit">Create topic</button>
    </form>
    <form class="inline" id="create-channel">
      <label for="new-channel-topic">Topic<input id="new-channel-topic" name="topic" required maxlength="64"></label>
      <label for="new-channel">Channel<input id="new-channel" name="channel" required maxlength="64"></label>
      <button type="submit">Create channel</button>
    </form>
    <h2>Topics and channels in nsqlookupd</h2>
    ${
      lookup.topics.length === 0
        ? '<p class="muted">No topics registered.</p>'
        : `<table><thead><tr><th scope="col">Topic</th><th scope="col">Channels</th></tr></thead><tbody>${rows}</tbody></table>`
    }`;
}

function render() {
  const route = currentRoute();
  for (const a of document.querySelectorAll('[data-nav]')) {
    const active =
      a.dataset.nav === route.page ||
      (a.dataset.nav === 'topics' && (route.page === 'topic' || route.page === 'channel'));
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  let html;
  if (route.page === 'lookup') html = lookupPage(state.lookup);
  else if (state.snapshot === null) html = '<p>Loading…</p>';
  else if (route.page === 'topic') html = topicPage(state.snapshot, route.topic);
  else if (route.page === 'channel') html = channelPage(state.snapshot, route.topic, route.channel);
  else if (route.page === 'nodes') html = nodesPage(state.snapshot);
  else html = topicsPage(state.snapshot);
  const focusedId = document.activeElement?.id;
  const main = $('#main');
  main.innerHTML = html;
  if (focusedId) document.getElementById(focusedId)?.focus();
  document.title = `nsqadmin · ${route.page === 'topics' ? 'Topics' : (route.channel ?? route.topic ?? route.page)}`;
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

async function login() {
  const password = window.prompt('nsqadmin password (required for admin actions)');
  if (password === null || password === '') return false;
  const res = await fetch(`${api}login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ password }),
  });
  if (!res.ok) notice('Wrong password.');
  return res.ok;
}

async function runAction({ kind, action, topic, channel, node }) {
  const target = kind === 'channel' ? `channel ${topic}/${channel}` : `topic ${topic}`;
  const what = action === 'tombstone' ? `${action} ${target} on ${node}` : `${action} ${target}`;
  if (action !== 'create' && !(await confirmAction(`Really ${what}?`))) return;
  const params = new URLSearchParams({ topic });
  if (channel !== undefined) params.set('channel', channel);
  if (node !== undefined) params.set('node', node);
  const post = () => fetch(`${api}${kind}/${action}?${params}`, { method: 'POST' });
  let res = await post();
  // --admin-password-file: a 401 asks for the password once, logs in (session cookie) and retries.
  if (res.status === 401 && (await login())) res = await post();
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) notice(`Not allowed to ${what}: log in first.`);
  else if (res.status === 403) notice(`Not allowed to ${what}: admin users only.`);
  else if (!res.ok) notice(`Could not ${what}: ${body.message ?? res.status}`);
  else if (body.errors.length > 0)
    notice(
      `${what}: ${body.errors.length} upstream error(s): ${body.errors.map((e) => `${e.address} ${e.message}`).join('; ')}`,
    );
  else notice(`Done: ${what}.`);
  if (res.ok && action === 'delete') location.hash = kind === 'channel' ? hashFor('topics', topic) : '#/topics';
  if (currentRoute().page === 'lookup' || action === 'create') await loadLookup();
}

document.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action]');
  if (button === null) {
    if (event.target.closest('#lookup-refresh') !== null) void loadLookup();
    return;
  }
  void runAction({ ...button.dataset });
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

window.addEventListener('hashchange', () => {
  notice('');
  if (currentRoute().page === 'lookup') void loadLookup();
  render();
  $('#main').focus();
});

render();
if (currentRoute().page === 'lookup') void loadLookup();
getJson('snapshot').then(
  (snapshot) => {
    if (state.snapshot === null) onSnapshot(snapshot, false);
  },
  (err) => renderErrors([{ source: 'nsqadmin', address: '', message: err.message }]),
);
connect();
