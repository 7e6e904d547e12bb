// nsqadmin's pages, each a function of the state app.js keeps (the latest snapshot, the lookupd
// view, the rate history) returning HTML. Every node, topic and channel name is a link; every
// list marks what is paused; nodes are named by broadcast address, with the hostname beside it.

import { esc, fmt, fmtDuration, fmtRate, rateChart, spark } from './chart.js';

export function hashFor(...parts) {
  return `#/${parts.map(encodeURIComponent).join('/')}`;
}

const topicLink = (t) => `<a href="${hashFor('topics', t)}">${esc(t)}</a>`;
const channelLink = (t, c) => `<a href="${hashFor('topics', t, c)}">${esc(c)}</a>`;
const nodeLink = (n) => `<a href="${hashFor('nodes', n)}">${esc(n)}</a>`;

/** `paused`, or `paused on 1 of 3 nodes` when only some of `nodes` (per-node stats) are. */
function pausedBadge(paused, nodes) {
  if (!paused) return '';
  const on = nodes?.filter((n) => n.paused).length ?? 0;
  const where = nodes !== undefined && on < nodes.length ? ` on ${on} of ${nodes.length} nodes` : '';
  return ` <span class="badge paused">paused${where}</span>`;
}

function stat(label, value, id) {
  return `<div class="stat"><div class="label">${esc(label)}</div><div class="value" data-testid="${id}">${value}</div></div>`;
}

/** A rate cell: the number, and in its title when it was sampled. */
function rateCell(rate, ctx, testid) {
  const title =
    ctx.ratesAt === null ? 'not sampled yet' : `messages/s, sampled ${new Date(ctx.ratesAt).toLocaleTimeString()}`;
  const stale = ctx.stale ? ' stale' : '';
  return `<td class="num${stale}" title="${esc(title)}"${testid ? ` data-testid="${esc(testid)}"` : ''}>${fmtRate(rate)}/s</td>`;
}

function actionButton(label, data, danger = false) {
  const attrs = Object.entries(data)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `data-${k}="${esc(v)}"`)
    .join(' ');
  const id = `btn-${Object.values(data).join('-')}`.replace(/[^\w-]/g, '_');
  return `<button type="button" id="${esc(id)}" class="${danger ? 'danger' : ''}" ${attrs}>${esc(label)}</button>`;
}

function table(headers, rows, empty) {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  const head = headers
    .map((h) =>
      h.startsWith('#') ? `<th scope="col" class="num">${esc(h.slice(1))}</th>` : `<th scope="col">${esc(h)}</th>`,
    )
    .join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

/** A Go-style duration (`1h30m0s`) for a setting in ms; 0 is off. */
export function goDuration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms === 0) return 'off';
  const h = Math.floor(ms / 3600e3);
  const m = Math.floor((ms % 3600e3) / 60e3);
  const s = (ms % 60e3) / 1000;
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${s}s`;
}

/** A button that opens the settings (or replay) dialog; app.js reads the current values. */
function policyButton(label, data) {
  const attrs = Object.entries(data)
    .map(([k, v]) => `data-${k}="${esc(v)}"`)
    .join(' ');
  return `<button type="button" ${attrs}>${esc(label)}</button>`;
}

const DIFFERS =
  ' <span class="badge warn" title="the nodes do not all have the same settings: see the node pages">differs between nodes</span>';

/** The delivery-policy part of a topic page (nsq-ts nsqd only): settings, what they did, and for a dead-letter topic its redrive. */
function topicPolicy(snap, t) {
  const dead = snap.deadLetterTopics.find((d) => d.name === t.name);
  const redrive = dead === undefined ? '' : redriveSection(dead);
  if (t.policy === null) return redrive;
  const p = t.policy;
  const durations =
    (p.messageTtlMs === null ? '' : stat('Message TTL', goDuration(p.messageTtlMs), 'topic-message-ttl')) +
    (p.retentionMs === null ? '' : stat('Retention', goDuration(p.retentionMs), 'topic-retention'));
  return `<h2>Delivery policy${t.policyDiffers ? DIFFERS : ''}</h2>
    <div class="stats">${stat('Max depth', p.maxDepth === 0 ? 'no cap' : fmt(p.maxDepth), 'topic-max-depth')}
      ${stat('Max bytes', p.maxBytes === 0 ? 'no cap' : fmt(p.maxBytes), 'topic-max-bytes')}
      ${stat('Overflow', esc(p.overflow), 'topic-overflow')}${durations}
      ${stat('Rejected', fmt(t.rejectedCount), 'topic-rejected')}${stat('Dropped', fmt(t.droppedCount), 'topic-dropped')}
      ${stat('Expired', fmt(t.expiredCount), 'topic-expired')}</div>
    <div class="actions">${policyButton('Edit topic policy', { policy: 'topic', topic: t.name })}</div>
    ${redrive}`;
}

/** Where a dead-letter topic's messages come from, and a redrive button per source topic. */
function redriveButtons(dead) {
  return [...new Set(dead.sources.map((s) => s.topic))]
    .map((to) => actionButton(`Redrive into ${to}`, { kind: 'topic', action: 'redrive', topic: dead.name, to }, true))
    .join(' ');
}

function sourceLinks(dead) {
  return dead.sources.map((s) => `${topicLink(s.topic)} / ${channelLink(s.topic, s.channel)}`).join(', ');
}

function redriveSection(dead) {
  return `<h2>Dead letters</h2>
    <p>This is the dead-letter topic of ${sourceLinks(dead)}: it holds <strong data-testid="dead-letter-depth">${fmt(dead.depth)}</strong> message(s) they gave up.</p>
    <div class="actions">${redriveButtons(dead)}</div>`;
}

/** The delivery-policy part of a channel page: settings, what they did, edit and replay. */
function channelPolicy(c) {
  if (c.policy === null) return '';
  const p = c.policy;
  const dead = p.deadLetterTopic === '' ? '<span class="muted">none: dropped</span>' : topicLink(p.deadLetterTopic);
  const data = { topic: c.topic, channel: c.name };
  return `<h2>Delivery policy${c.policyDiffers ? DIFFERS : ''}</h2>
    <div class="stats">${stat('Max attempts', p.maxAttempts === 0 ? 'unlimited' : fmt(p.maxAttempts), 'channel-max-attempts')}
      ${stat('Dead-letter topic', dead, 'channel-dead-letter-topic')}
      ${stat('Dead-lettered', fmt(c.deadLetteredCount), 'channel-dead-lettered')}
      ${stat('Dropped', fmt(c.droppedCount), 'channel-dropped')}${stat('Expired', fmt(c.expiredCount), 'channel-expired')}</div>
    <div class="actions">${policyButton('Edit channel policy', { policy: 'channel', ...data })}
      ${policyButton('Replay…', { policy: 'replay', ...data })}</div>`;
}

function rangeButtons(ctx) {
  const buttons = ctx.ranges
    .map(
      (r) =>
        `<button type="button" class="range" data-range="${r.key}" aria-pressed="${r.key === ctx.range.key}">${esc(r.label)}</button>`,
    )
    .join('');
  return `<div class="ranges" role="group" aria-label="Chart time span">${buttons}</div>`;
}

function chart(ctx, title, id, lines) {
  return rateChart({
    title,
    id,
    now: ctx.now,
    spanMs: ctx.range.ms,
    lines: lines.map(([label, cls, key]) => ({ label, cls, points: ctx.points(key) })),
  });
}

// ---------------------------------------------------------------- topics

export function topicsPage(snap, ctx) {
  const rows = snap.topics.map((t) => {
    const nodes = t.nodes
      .map(
        (n) =>
          `${nodeLink(n.node)}: ${fmt(n.totalDepth)} deep, ${fmt(n.messageCount)} msgs${n.paused ? ' (paused)' : ''}`,
      )
      .join(' · ');
    const paused = t.channels.filter((c) => c.paused).length;
    const d = t.deepestChannel;
    const deepest =
      d === null
        ? '<span class="muted">no channels</span>'
        : `${channelLink(t.name, d.name)}: ${fmt(d.depth)}${pausedBadge(d.paused, t.channels.find((c) => c.name === d.name)?.nodes)}`;
    return `<tr>
        <td>${topicLink(t.name)}${pausedBadge(t.paused, t.nodes)}</td>
        <td class="num" data-testid="topic-depth-${esc(t.name)}">${fmt(t.totalDepth)}</td>
        <td data-testid="topic-deepest-${esc(t.name)}">${deepest}</td>
        <td class="num" data-testid="topic-messages-${esc(t.name)}">${fmt(t.messageCount)}</td>
        ${rateCell(t.ingressRate, ctx, `topic-rate-${t.name}`)}
        <td>${spark(ctx.points(`t:${t.name}`), ctx.now, ctx.range.ms)}</td>
        <td class="num">${t.channelCount}${paused > 0 ? ` <span class="badge paused">${paused} paused</span>` : ''}</td>
        <td class="num">${t.nodes.length}</td>
      </tr>
      <tr class="sub"><td colspan="8">${nodes}</td></tr>`;
  });
  return `<h1>Topics</h1>
    ${table(
      [
        'Topic',
        '#Depth (total)',
        'Deepest channel',
        '#Messages',
        '#Rate in',
        `Last ${ctx.range.label}`,
        '#Channels',
        '#Nodes',
      ],
      rows,
      'No topics yet.',
    )}
    <p class="muted">Depth (total) is the topic's own depth plus every channel's: the messages waiting anywhere in it.
    The per-node breakdown is under each topic.</p>`;
}

// ---------------------------------------------------------------- topic

/** A topic no reachable nsqd has: what the lookupds still list, and a way to remove it. */
function lookupOnlyTopic(name, ctx) {
  const listed = ctx.lookup?.topics.find((t) => t.name === name);
  const crumbs = `<p class="crumbs"><a href="#/topics">Topics</a> / ${esc(name)}</p>`;
  if (ctx.lookup === null) return `${crumbs}<h1>Topic ${esc(name)}</h1><p>Loading…</p>`;
  if (listed === undefined) {
    return `${crumbs}<h1>Topic ${esc(name)}</h1><p>No reachable nsqd has this topic and no nsqlookupd lists it.</p>`;
  }
  const channels = listed.channels.map(
    (c) =>
      `<tr><td>${esc(c)}</td><td>${actionButton('Delete channel', { kind: 'channel', action: 'delete', topic: name, channel: c }, true)}</td></tr>`,
  );
  return `${crumbs}<h1>Topic ${esc(name)} <span class="badge warn">only in nsqlookupd</span></h1>
    <p>nsqlookupd still lists this topic${listed.producers.length > 0 ? ` with producers ${listed.producers.map(nodeLink).join(', ')} that did not answer` : ', but no nsqd has it'}.
    Deleting it removes it from every nsqlookupd (and from any nsqd that has it).</p>
    <div class="actions">${actionButton('Delete topic', { kind: 'topic', action: 'delete', topic: name }, true)}</div>
    <h2>Channels in nsqlookupd</h2>
    ${table(['Channel', 'Action'], channels, 'No channels registered.')}`;
}

export function topicPage(snap, name, ctx) {
  const t = snap.topics.find((x) => x.name === name);
  if (t === undefined) return lookupOnlyTopic(name, ctx);
  const nodes = t.nodes.map((n) => {
    const data = { kind: 'topic', topic: t.name, node: n.node };
    return `<tr><td>${nodeLink(n.node)}${pausedBadge(n.paused)}</td><td class="num">${fmt(n.depth)}</td>
      <td class="num">${fmt(n.depth - n.backendDepth)}</td><td class="num">${fmt(n.backendDepth)}</td>
      <td class="num">${fmt(n.totalDepth)}</td><td class="num">${fmt(n.messageCount)}</td><td class="num">${n.channelCount}</td>
      <td class="row-actions">${n.paused ? actionButton('Unpause', { ...data, action: 'unpause' }) : actionButton('Pause', { ...data, action: 'pause' })}
        ${actionButton('Empty', { ...data, action: 'empty' }, true)}
        ${actionButton('Tombstone', { ...data, action: 'tombstone' }, true)}</td></tr>`;
  });
  const channels = t.channels.map(
    (c) => `<tr><td>${channelLink(t.name, c.name)}${pausedBadge(c.paused, c.nodes)}</td>
      <td class="num" data-testid="channel-depth-${esc(c.name)}">${fmt(c.depth)}</td><td class="num">${fmt(c.inFlightCount)}</td><td class="num">${fmt(c.deferredCount)}</td>
      <td class="num">${fmt(c.requeueCount)}</td><td class="num">${fmt(c.timeoutCount)}</td>
      <td class="num">${fmt(c.messageCount)}</td>${rateCell(c.ingressRate, ctx)}${rateCell(c.egressRate, ctx)}
      <td>${spark(ctx.points(`c:${t.name}/${c.name}`), ctx.now, ctx.range.ms)}</td>
      <td class="num">${fmt(c.clientCount)}</td></tr>`,
  );
  const data = { kind: 'topic', topic: t.name };
  return `<p class="crumbs"><a href="#/topics">Topics</a> / ${esc(name)}</p>
    <h1>Topic ${esc(t.name)}${pausedBadge(t.paused, t.nodes)}</h1>
    <div class="stats">${stat('Depth (total)', fmt(t.totalDepth), 'topic-depth')}${stat('Topic depth', fmt(t.depth), 'topic-own-depth')}
      ${stat('Messages', fmt(t.messageCount), 'topic-messages')}${stat('Rate in', `${fmtRate(t.ingressRate)}/s`, 'topic-rate')}
      ${stat('Channels', t.channelCount, 'topic-channels')}</div>
    ${rangeButtons(ctx)}
    ${chart(ctx, `Messages published to ${t.name}`, 'topic-chart', [['published', 'ingress', `t:${t.name}`]])}
    <div class="actions">
      ${t.paused ? actionButton('Unpause topic', { ...data, action: 'unpause' }) : actionButton('Pause topic', { ...data, action: 'pause' })}
      ${actionButton('Empty topic', { ...data, action: 'empty' }, true)}
      ${actionButton('Delete topic', { ...data, action: 'delete' }, true)}
    </div>
    ${topicPolicy(snap, t)}
    <h2>Nodes</h2>
    ${table(['Node', '#Depth', '#Memory', '#Disk', '#With channels', '#Messages', '#Channels', 'On this node only'], nodes, 'On no node.')}
    <h2>Channels</h2>
    ${table(
      [
        'Channel',
        '#Depth',
        '#In flight',
        '#Deferred',
        '#Requeued',
        '#Timed out',
        '#Messages',
        '#Rate in',
        '#Rate out',
        `Last ${ctx.range.label}`,
        '#Clients',
      ],
      channels,
      'No channels.',
    )}
    <p class="muted">Rate in: messages put into the channel; rate out: messages its consumers finished. A channel whose rate out stays below its rate in is falling behind.</p>`;
}

// ---------------------------------------------------------------- channel

function clientRows(clients, nowS, withNode) {
  return clients.map((k) => {
    const flags = [
      k.tls ? 'TLS' : '',
      k.snappy ? 'snappy' : '',
      k.deflate ? 'deflate' : '',
      k.sampleRate > 0 ? `sampled ${k.sampleRate}%` : '',
    ].filter((f) => f !== '');
    return `<tr><td data-testid="client-id">${esc(k.clientId)}</td><td>${esc(k.hostname)}</td><td>${esc(k.remoteAddress)}</td>
      ${withNode ? `<td>${nodeLink(k.node)}</td>` : ''}
      <td>${esc(k.userAgent || k.version)}</td><td>${flags.length === 0 ? '—' : esc(flags.join(', '))}</td>
      <td class="num">${fmt(k.readyCount)}</td><td class="num">${fmt(k.inFlightCount)}</td><td class="num">${fmt(k.messageCount)}</td>
      <td class="num">${fmt(k.finishCount)}</td><td class="num">${fmt(k.requeueCount)}</td>
      <td class="num">${fmtDuration((nowS - k.connectTs) * 1000)}</td></tr>`;
  });
}

const CLIENT_HEADERS = [
  'Client ID',
  'Hostname',
  'Address',
  'User agent',
  'TLS / compression',
  '#RDY',
  '#In flight',
  '#Messages',
  '#Finished',
  '#Requeued',
  '#Connected',
];

export function channelPage(snap, topic, name, ctx) {
  const c = snap.topics.find((x) => x.name === topic)?.channels.find((x) => x.name === name);
  const crumbs = `<p class="crumbs"><a href="#/topics">Topics</a> / ${topicLink(topic)} / ${esc(name)}</p>`;
  if (c === undefined) {
    const listed = ctx.lookup?.topics.find((t) => t.name === topic)?.channels.includes(name);
    return `${crumbs}<h1>Channel ${esc(name)}</h1><p>This channel is on no reachable node${listed ? '; nsqlookupd still lists it' : ''}.</p>
      ${listed ? `<div class="actions">${actionButton('Delete channel', { kind: 'channel', action: 'delete', topic, channel: name }, true)}</div>` : ''}`;
  }
  const nodes = c.nodes.map((n) => {
    const data = { kind: 'channel', topic, channel: name, node: n.node };
    return `<tr><td>${nodeLink(n.node)}${pausedBadge(n.paused)}</td><td class="num" data-testid="node-depth-${esc(n.node)}">${fmt(n.depth)}</td>
      <td class="num">${fmt(n.inFlightCount)}</td><td class="num">${fmt(n.deferredCount)}</td><td class="num">${fmt(n.requeueCount)}</td>
      <td class="num">${fmt(n.timeoutCount)}</td><td class="num">${fmt(n.messageCount)}</td><td class="num">${fmt(n.clientCount)}</td>
      <td class="row-actions">${n.paused ? actionButton('Unpause', { ...data, action: 'unpause' }) : actionButton('Pause', { ...data, action: 'pause' })}
        ${actionButton('Empty', { ...data, action: 'empty' }, true)}</td></tr>`;
  });
  const data = { kind: 'channel', topic, channel: name };
  return `${crumbs}<h1>Channel ${esc(topic)} / ${esc(name)}${pausedBadge(c.paused, c.nodes)}</h1>
    <div class="stats">${stat('Depth', fmt(c.depth), 'channel-depth')}${stat('In flight', fmt(c.inFlightCount), 'channel-inflight')}
      ${stat('Deferred', fmt(c.deferredCount), 'channel-deferred')}${stat('Requeued', fmt(c.requeueCount), 'channel-requeued')}
      ${stat('Timed out', fmt(c.timeoutCount), 'channel-timedout')}${stat('Messages', fmt(c.messageCount), 'channel-messages')}
      ${stat('Rate in', `${fmtRate(c.ingressRate)}/s`, 'channel-rate-in')}${stat('Rate out', `${fmtRate(c.egressRate)}/s`, 'channel-rate-out')}
      ${stat('Clients', fmt(c.clientCount), 'channel-clients')}</div>
    ${rangeButtons(ctx)}
    ${chart(ctx, `Channel ${name}`, 'channel-chart', [
      ['in (put)', 'ingress', `c:${topic}/${name}`],
      ['out (finished)', 'egress', `e:${topic}/${name}`],
    ])}
    <div class="actions">
      ${c.paused ? actionButton('Unpause channel', { ...data, action: 'unpause' }) : actionButton('Pause channel', { ...data, action: 'pause' })}
      ${actionButton('Empty channel', { ...data, action: 'empty' }, true)}
      ${actionButton('Delete channel', { ...data, action: 'delete' }, true)}
    </div>
    ${channelPolicy(c)}
    <h2>Nodes</h2>
    ${table(['Node', '#Depth', '#In flight', '#Deferred', '#Requeued', '#Timed out', '#Messages', '#Clients', 'On this node only'], nodes, 'On no node.')}
    <h2>Clients</h2>
    ${table([...CLIENT_HEADERS.slice(0, 3), 'Node', ...CLIENT_HEADERS.slice(3)], clientRows(c.clients, snap.at / 1000, true), 'No clients connected.')}`;
}

// ---------------------------------------------------------------- nodes

function health(n) {
  if (!n.reachable) return `<span class="badge bad" title="${esc(n.error ?? '')}">unreachable</span>`;
  return n.health === 'OK' ? '<span class="badge ok">OK</span>' : `<span class="badge bad">${esc(n.health)}</span>`;
}

function started(n, nowMs) {
  if (n.startTime === 0) return '–';
  return `${esc(new Date(n.startTime * 1000).toLocaleString())} <span class="muted">(up ${fmtDuration(nowMs - n.startTime * 1000)})</span>`;
}

/** A replica group member's role and epoch (nsq-ts --ha-group), with the lag it reports; '–' outside a group. */
function haRole(n) {
  if (n.ha === null || n.ha === undefined) return '–';
  const h = n.ha;
  const badge = h.role === 'leader' ? '<span class="badge ok">leader</span>' : '<span class="badge">follower</span>';
  const lag = h.lag
    .map((l) => `${esc(l.member)} ${fmt(l.batches)}${l.ms === null ? '' : ` (${fmt(l.ms)} ms)`}`)
    .join(', ');
  return `${badge} <span class="muted">${esc(h.group)}/${esc(h.memberId)} epoch ${h.epoch}${lag === '' ? '' : ` · lag ${lag}`}</span>`;
}

/** A replica group member's event counters since it started (elections, in-sync set changes, refusals). */
function haEvents(h) {
  const e = h.events;
  if (e === undefined) return '–';
  const refusals = e.refusedPublishes + e.unansweredPublishes;
  return `won ${fmt(e.electionsWon)} · lost ${fmt(e.leadershipLost)} · in-sync −${fmt(e.isrShrinks)} +${fmt(e.isrExpands)} · refused ${refusals > 0 ? `<span class="badge warn">${fmt(e.refusedPublishes)}</span>` : '0'}${e.unansweredPublishes > 0 ? ` unanswered ${fmt(e.unansweredPublishes)}` : ''}`;
}

export function nodesPage(snap, ctx) {
  const rows = snap.nodes.map(
    (n) => `<tr><td>${nodeLink(n.id)}<div class="muted">${esc(n.hostname)}</div></td>
        <td class="num">${n.tcpPort}</td><td>${esc(n.version)}${n.outOfDate ? ' <span class="badge warn">out of date</span>' : ''}</td>
        <td>${health(n)}</td><td>${haRole(n)}</td><td>${started(n, snap.at)}</td>
        <td class="num">${n.topics.length}</td><td class="num">${fmt(n.depth)}</td><td class="num">${fmt(n.messageCount)}</td>
        ${rateCell(n.ingressRate, ctx)}<td class="num">${fmt(n.clientCount)}</td></tr>`,
  );
  return `<h1>Nodes</h1>
    ${table(
      [
        'Node (broadcast address)',
        '#TCP port',
        'Version',
        'Health',
        'Replica group',
        'Started',
        '#Topics',
        '#Depth',
        '#Messages',
        '#Rate in',
        '#Clients',
      ],
      rows,
      'No nsqd nodes found.',
    )}
    ${lookupdTable(snap.lookupds)}`;
}

function lookupdTable(lookupds) {
  const rows = lookupds.map(
    (
      l,
    ) => `<tr><td>${esc(l.address)}</td><td>${l.reachable ? '<span class="badge ok">OK</span>' : `<span class="badge bad">unreachable</span> <span class="muted">${esc(l.error ?? '')}</span>`}</td>
      <td>${esc(l.version || '–')}</td><td class="num">${l.reachable ? fmt(l.nodeCount) : '–'}</td></tr>`,
  );
  return `<h2>nsqlookupd</h2>${table(['Address', 'Health', 'Version', '#Nodes listed'], rows, 'nsqadmin is not configured with nsqlookupd addresses.')}`;
}

export function nodePage(snap, id, ctx) {
  const n = snap.nodes.find((x) => x.id === id);
  const crumbs = `<p class="crumbs"><a href="#/nodes">Nodes</a> / ${esc(id)}</p>`;
  if (n === undefined)
    return `${crumbs}<h1>Node ${esc(id)}</h1><p>No nsqlookupd lists this node and nsqadmin was not given it.</p>`;
  const topics = snap.topics.flatMap((t) => {
    const own = t.nodes.find((x) => x.node === id);
    if (own === undefined) return [];
    const channels = t.channels.flatMap((c) => {
      const s = c.nodes.find((x) => x.node === id);
      if (s === undefined) return [];
      return [
        `<tr class="channel-row"><td class="indent">${channelLink(t.name, c.name)}${pausedBadge(s.paused)}</td>
        <td class="num">${fmt(s.depth)}</td><td class="num">${fmt(s.depth - s.backendDepth)} + ${fmt(s.backendDepth)}</td>
        <td class="num">${fmt(s.inFlightCount)}</td><td class="num">${fmt(s.deferredCount)}</td><td class="num">${fmt(s.requeueCount)}</td>
        <td class="num">${fmt(s.timeoutCount)}</td><td class="num">${fmt(s.messageCount)}</td><td class="num">${fmt(s.clientCount)}</td></tr>`,
      ];
    });
    return [
      `<tr class="topic-row"><td>${topicLink(t.name)}${pausedBadge(own.paused)}</td><td class="num">${fmt(own.depth)}</td>
        <td class="num">${fmt(own.depth - own.backendDepth)} + ${fmt(own.backendDepth)}</td><td colspan="4"></td>
        <td class="num">${fmt(own.messageCount)}</td><td class="num">${own.channelCount} ch</td></tr>`,
      ...channels,
    ];
  });
  const clients = snap.topics.flatMap((t) =>
    t.channels.flatMap((c) =>
      c.clients.filter((k) => k.node === id).map((k) => ({ ...k, where: `${t.name}/${c.name}` })),
    ),
  );
  const clientTable = table(
    ['Channel', ...CLIENT_HEADERS],
    clientRows(clients, snap.at / 1000, false).map((row, i) => {
      const [t, c] = clients[i].where.split('/');
      return row.replace('<tr>', `<tr><td>${topicLink(t)} / ${channelLink(t, c)}</td>`);
    }),
    'No clients connected.',
  );
  const tombstoned = n.topics.filter((t) => t.tombstoned).map((t) => esc(t.name));
  return `${crumbs}<h1>Node ${esc(n.id)} <span class="muted host">${esc(n.hostname)}</span></h1>
    <div class="stats">${stat('Health', health(n), 'node-health')}${stat('Version', esc(n.version), 'node-version')}
      ${stat('Started', started(n, snap.at), 'node-started')}${stat('TCP', `${esc(n.broadcastAddress)}:${n.tcpPort}`, 'node-tcp')}
      ${stat('Topics', n.topics.length, 'node-topics')}${stat('Depth', fmt(n.depth), 'node-depth')}
      ${stat('Messages', fmt(n.messageCount), 'node-messages')}${stat('Rate in', `${fmtRate(n.ingressRate)}/s`, 'node-rate')}
      ${stat('Clients', fmt(n.clientCount), 'node-clients')}${n.ha ? stat('Replica group', haRole(n), 'node-ha') + stat('Replica events', haEvents(n.ha), 'node-ha-events') : ''}</div>
    ${n.reachable ? '' : `<p class="warning-box">This node's /stats did not answer: ${esc(n.error ?? '')}</p>`}
    ${tombstoned.length > 0 ? `<p>Tombstoned in nsqlookupd: ${tombstoned.join(', ')}</p>` : ''}
    ${rangeButtons(ctx)}
    ${chart(ctx, `Messages published to ${n.id}`, 'node-chart', [['published', 'ingress', `n:${n.id}`]])}
    <h2>Topics and channels</h2>
    ${table(['Topic / channel', '#Depth', '#Memory + disk', '#In flight', '#Deferred', '#Requeued', '#Timed out', '#Messages', '#Clients'], topics, 'No topics on this node.')}
    <h2>Clients</h2>
    ${clientTable}`;
}

// ---------------------------------------------------------------- lookup

export function lookupPage(lookup, snap) {
  if (lookup === null) return '<h1>Lookup</h1><p>Loading…</p>';
  const inactive = lookup.topics.filter((t) => t.producers.length === 0);
  const rows = lookup.topics.map(
    (t) => `<tr><td>${topicLink(t.name)}</td>
      <td>${t.channels.map((c) => channelLink(t.name, c)).join(', ') || '<span class="muted">none</span>'}</td>
      <td>${t.producers.map(nodeLink).join(', ') || '<span class="badge warn">none</span>'}</td></tr>`,
  );
  const inactiveRows = inactive.map(
    (t) => `<tr><td>${topicLink(t.name)}</td><td>${esc(t.channels.join(', ') || '–')}</td>
      <td>${actionButton('Delete', { kind: 'topic', action: 'delete', topic: t.name }, true)}</td></tr>`,
  );
  return `<h1>Lookup</h1>
    ${lookupdTable(snap?.lookupds ?? lookup.lookupds.map((address) => ({ address, reachable: true, error: null, version: '', nodeCount: 0 })))}
    <div class="actions"><button type="button" id="lookup-refresh">Refresh</button></div>
    <h2>Inactive topics</h2>
    <p class="muted">Listed by nsqlookupd but produced on no nsqd (left behind by a node that went away). Deleting one removes it from every nsqlookupd.</p>
    ${table(['Topic', 'Channels', 'Action'], inactiveRows, 'No inactive topics.')}
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
    ${table(['Topic', 'Channels', 'Producers'], rows, 'No topics registered.')}`;
}

// ---------------------------------------------------------------- dead letters

export function deadLettersPage(snap) {
  const rows = snap.deadLetterTopics.map(
    (
      d,
    ) => `<tr><td>${d.exists ? topicLink(d.name) : `${esc(d.name)} <span class="muted">(no dead letter yet)</span>`}</td>
      <td class="num" data-testid="dead-letter-depth-${esc(d.name)}">${fmt(d.depth)}</td><td class="num">${fmt(d.messageCount)}</td>
      <td>${sourceLinks(d)}</td><td class="row-actions">${d.exists ? redriveButtons(d) : ''}</td></tr>`,
  );
  return `<h1>Dead letters</h1>
    <p class="muted">Topics that channels give up messages into after their max attempts (nsq-ts nsqd's delivery policies).
    Depth: dead letters still there. Redrive moves them back into a topic, each once.</p>
    ${table(['Dead-letter topic', '#Depth', '#Messages', 'Fed by', 'Action'], rows, 'No channel has a dead-letter topic.')}`;
}

// ---------------------------------------------------------------- counter

export function counterPage(snap, ctx) {
  return `<h1>Messages</h1>
    <div class="counter">
      <div class="big" data-testid="counter-total">${fmt(snap.totalMessages)}</div>
      <p class="muted">messages put into channels across the cluster (NSQ's counter: every channel's message count on every node),
      now <strong data-testid="counter-rate">${fmtRate(snap.totalRate)}/s</strong></p>
    </div>
    ${rangeButtons(ctx)}
    ${chart(ctx, 'Messages into channels, cluster-wide', 'counter-chart', [['messages', 'ingress', 'all']])}`;
}
