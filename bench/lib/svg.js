/**
 * A hand-written SVG chart of one bench run (no dependency), written next to its JSON:
 *   1. throughput: one horizontal bar per message-rate phase (msgs/s);
 *   2. latency: p50 / p99 / p99.9 per offered rate, log scale, with the 10 ms p99 target;
 *   3. resources: broker RSS and idle CPU from rss-1m / idle-conns / idle-topics, each against
 *      its target where it has one (lib/targets.js);
 *   4. broker RSS over time (overflow: publish then drain; soak: with its restarts marked).
 * Panels without data are left out; nothing is written if none has any.
 */
import fs from 'node:fs';
import { TARGETS } from './targets.js';
import { fmtInt } from './util.js';

/**
 * @import { LatencySummary, RssPoint, RunOutput } from './types.js'
 */

/** @typedef {{ label: string, value: number, color: string }} Bar */
/** @typedef {{ label: string, l: LatencySummary }} LatencyItem */
/** @typedef {{ label: string, value: number, unit: string, target: number | null, targetText?: string }} ResourceItem */
/** @typedef {{ label: string, points: RssPoint[], marks: { t: number, text: string }[], min: number | null | undefined, max: number | null | undefined }} SeriesItem */
/** @typedef {{ svg: string, height: number }} Panel */

const W = 960;
const LABEL_W = 300;
const BAR_H = 16;
const GAP = 6;
/** @param {number} [size] */
const font = (size = 12) => `font-family="system-ui, sans-serif" font-size="${size}"`;
/** @type {Record<string, string>} */
const COLORS = { pub: '#3b7dd8', sub: '#2e9e6a', p50: '#3b7dd8', p99: '#e08a1e', p999: '#c8423b', res: '#7a5cc4' };

/** @param {unknown} s */
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * @param {RunOutput} run
 * @returns {Bar[]}
 */
function throughputItems(run) {
  const items = [];
  for (const r of run.scenarios) {
    if (r.name === 'stats-scrape') continue;
    for (const p of r.phases) {
      if (!(p.msgsPerSec > 0) || p.kind === 'idle' || p.kind === 'latency') continue;
      items.push({
        label: `${r.name} · ${p.phase}`,
        value: p.msgsPerSec,
        color: p.role === 'sub' ? COLORS.sub : COLORS.pub,
      });
    }
  }
  return items;
}

/**
 * @param {RunOutput} run
 * @returns {LatencyItem[]}
 */
function latencyItems(run) {
  const items = [];
  for (const r of run.scenarios) {
    for (const p of r.phases) {
      if (p.kind !== 'latency' || !p.latency || p.latency.n === 0) continue;
      items.push({ label: `${fmtInt(p.offeredRate ?? 0)}/s offered (${fmtInt(p.msgsPerSec)} achieved)`, l: p.latency });
    }
  }
  return items;
}

/**
 * @param {RunOutput} run
 * @returns {ResourceItem[]}
 */
function resourceItems(run) {
  /** @type {ResourceItem[]} */
  const items = [];
  for (const r of run.scenarios) {
    if (r.name === 'rss-1m' && r.memory) {
      const M = r.memory;
      const label = `${fmtInt(M.messages)} × ${M.msgSize} B queued`;
      if (M.afterPublishRssMiB !== null)
        items.push({
          label: `${label}: RSS after publish`,
          value: M.afterPublishRssMiB,
          unit: 'MiB',
          target: TARGETS.rss1mMB / 1.048576,
          targetText: `${TARGETS.rss1mMB} MB`,
        });
      if (M.afterSettleRssMiB !== null)
        items.push({
          label: `${label}: RSS after settle`,
          value: M.afterSettleRssMiB,
          unit: 'MiB',
          target: TARGETS.rss1mMB / 1.048576,
          targetText: `${TARGETS.rss1mMB} MB`,
        });
    }
    if (r.name === 'idle-conns' && r.idle) {
      const I = r.idle;
      if (I.idleEndRssMiB != null)
        items.push({
          label: `${fmtInt(I.connections ?? 0)} idle conns: RSS`,
          value: I.idleEndRssMiB,
          unit: 'MiB',
          target: TARGETS.idleConnsRssMB / 1.048576,
          targetText: `${TARGETS.idleConnsRssMB} MB`,
        });
      if (I.idleCpuPct !== null)
        items.push({
          label: `${fmtInt(I.connections ?? 0)} idle conns: CPU`,
          value: I.idleCpuPct,
          unit: '%',
          target: TARGETS.idleConnsCpuPct,
          targetText: `${TARGETS.idleConnsCpuPct} %`,
        });
    }
    if (r.name === 'idle-topics' && r.idle) {
      const I = r.idle;
      if (I.idleCpuPct !== null)
        items.push({
          label: `${fmtInt(I.topics ?? 0)} idle topics: CPU`,
          value: I.idleCpuPct,
          unit: '%',
          target: null,
        });
      if (I.rssMiB != null)
        items.push({ label: `${fmtInt(I.topics ?? 0)} idle topics: RSS`, value: I.rssMiB, unit: 'MiB', target: null });
    }
  }
  return items;
}

/**
 * @param {number} y
 * @param {string} text
 */
function title(y, text) {
  return `<text x="12" y="${y}" ${font(15)} font-weight="bold">${esc(text)}</text>`;
}

/**
 * @param {number} y0
 * @param {string} heading
 * @param {Bar[]} items
 * @returns {Panel}
 */
function barPanel(y0, heading, items) {
  const out = [title(y0 + 16, heading)];
  const max = Math.max(...items.map((i) => i.value)) * 1.12;
  const plotW = W - LABEL_W - 20;
  let y = y0 + 30;
  for (const it of items) {
    const w = Math.max(1, (it.value / max) * plotW);
    out.push(`<text x="${LABEL_W - 8}" y="${y + 12}" ${font()} text-anchor="end">${esc(it.label)}</text>`);
    out.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${it.color}"/>`);
    out.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + 12}" ${font()}>${fmtInt(it.value)}</text>`);
    y += BAR_H + GAP;
  }
  return { svg: out.join('\n'), height: y - y0 + 10 };
}

/**
 * @param {number} y0
 * @param {LatencyItem[]} items
 * @returns {Panel}
 */
function latencyPanel(y0, items) {
  const out = [title(y0 + 16, 'publish → deliver latency (ms, log scale): p50 / p99 / p99.9')];
  const all = items
    .flatMap((i) => [i.l.p50Ms, i.l.p99Ms, i.l.p999Ms])
    .filter(/** @returns {x is number} */ (x) => x !== null && x !== undefined && x > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(0.1, ...all)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(20, ...all)));
  const plotW = W - LABEL_W - 60;
  /** @param {number} v */
  const xOf = (v) =>
    LABEL_W + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW;
  let y = y0 + 34;
  const top = y;
  for (const it of items) {
    out.push(`<text x="${LABEL_W - 8}" y="${y + 24}" ${font()} text-anchor="end">${esc(it.label)}</text>`);
    for (const [k, v] of /** @type {const} */ ([
      ['p50', it.l.p50Ms],
      ['p99', it.l.p99Ms],
      ['p999', it.l.p999Ms],
    ])) {
      const w = Math.max(1, xOf(v ?? 0) - LABEL_W);
      out.push(`<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H - 4}" fill="${COLORS[k]}"/>`);
      out.push(`<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + 10}" ${font(11)}>${k} ${v}</text>`);
      y += BAR_H - 2;
    }
    y += GAP * 2;
  }
  // Decade grid lines and the 10 ms target.
  for (let v = lo; v <= hi * 1.0001; v *= 10) {
    const x = xOf(v).toFixed(1);
    out.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${y}" stroke="#ccc" stroke-width="1"/>`);
    out.push(`<text x="${x}" y="${y + 14}" ${font(11)} text-anchor="middle">${v >= 1 ? v : v.toPrecision(1)}</text>`);
  }
  const tx = xOf(TARGETS.latencyP99Ms).toFixed(1);
  out.push(`<line x1="${tx}" y1="${top - 4}" x2="${tx}" y2="${y}" stroke="#c8423b" stroke-dasharray="4 3"/>`);
  out.push(
    `<text x="${tx}" y="${top - 8}" ${font(11)} fill="#c8423b" text-anchor="middle">${TARGETS.latencyP99Ms} ms (p99 target at 50k/s)</text>`,
  );
  return { svg: out.join('\n'), height: y - y0 + 26 };
}

/**
 * @param {number} y0
 * @param {ResourceItem[]} items
 * @returns {Panel}
 */
function resourcePanel(y0, items) {
  const out = [title(y0 + 16, 'broker resources (dashed: target)')];
  const plotW = W - LABEL_W - 160;
  // One scale per unit (MiB rows comparable with each other, % rows likewise).
  /** @type {Record<string, number>} */
  const scale = {};
  for (const it of items) scale[it.unit] = Math.max(scale[it.unit] ?? 0, it.value * 1.1, (it.target ?? 0) * 1.1);
  let y = y0 + 30;
  for (const it of items) {
    const max = scale[it.unit] || 1;
    const w = Math.max(1, (it.value / max) * plotW);
    const over = it.target !== null && it.value >= it.target;
    out.push(`<text x="${LABEL_W - 8}" y="${y + 12}" ${font()} text-anchor="end">${esc(it.label)}</text>`);
    out.push(
      `<rect x="${LABEL_W}" y="${y}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${over ? COLORS.p999 : COLORS.res}"/>`,
    );
    const t = it.target === null ? '' : ` (target < ${it.targetText})`;
    out.push(
      `<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + 12}" ${font()}>${esc(`${it.value} ${it.unit}${t}`)}</text>`,
    );
    if (it.target !== null) {
      const tx = (LABEL_W + (it.target / max) * plotW).toFixed(1);
      out.push(
        `<line x1="${tx}" y1="${y - 2}" x2="${tx}" y2="${y + BAR_H + 2}" stroke="#000" stroke-dasharray="3 2"/>`,
      );
    }
    y += BAR_H + GAP;
  }
  return { svg: out.join('\n'), height: y - y0 + 10 };
}

/**
 * One RSS-over-time series per storage scenario that has one (overflow, soak).
 * @param {RunOutput} run
 * @returns {SeriesItem[]}
 */
function seriesItems(run) {
  /** @type {SeriesItem[]} */
  const items = [];
  for (const r of run.scenarios) {
    /** @type {SeriesItem['marks']} */
    const marks = [];
    const o = r.storage;
    const k = r.soak;
    if (o !== undefined && o.rssSeries.length >= 2) {
      const drain = o.rssSeries.find((p) => p.phase === 'drain');
      if (drain) marks.push({ t: drain.t, text: 'drain starts' });
      const label = `overflow: ${fmtInt(o.messages)} × ${o.msgSize} B to disk and back (${fmtInt((o.diskAtPeak?.topicBytes ?? 0) / 1048576)} MiB at the peak)`;
      items.push({ label, points: o.rssSeries, marks, min: o.rss?.min, max: o.rss?.max });
    } else if (k !== undefined && k.rssSeries.length >= 2) {
      for (const t of k.restartMarks ?? []) marks.push({ t, text: 'restart' });
      const label = `soak: ${k.minutes} min, ${k.restarts?.length ?? 0} SIGTERM restarts — ${k.verdict}`;
      items.push({ label, points: k.rssSeries, marks, min: k.rss?.min, max: k.rss?.max });
    }
  }
  return items;
}

/**
 * @param {number} y0
 * @param {SeriesItem[]} items
 * @returns {Panel}
 */
function seriesPanel(y0, items) {
  const out = [title(y0 + 16, 'broker RSS over time (MiB; one point per second, largest per bucket)')];
  const left = 70;
  const plotW = W - left - 30;
  const plotH = 130;
  let y = y0 + 34;
  for (const it of items) {
    out.push(`<text x="${left}" y="${y}" ${font()}>${esc(`${it.label}; RSS ${it.min}–${it.max} MiB`)}</text>`);
    const top = y + 10;
    const tMax = Math.max(...it.points.map((p) => p.t), 1);
    const vMax = Math.max(...it.points.map((p) => p.rssMiB ?? 0), 1) * 1.15;
    /** @param {number} t */
    const xOf = (t) => left + (t / tMax) * plotW;
    /** @param {number} v */
    const yOf = (v) => top + plotH - (v / vMax) * plotH;
    out.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#999"/>`);
    out.push(`<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#999"/>`);
    for (const v of [0, vMax / 2, vMax / 1.15]) {
      const yy = yOf(v).toFixed(1);
      out.push(`<text x="${left - 6}" y="${yy}" ${font(11)} text-anchor="end">${fmtInt(v)}</text>`);
    }
    out.push(
      `<text x="${left + plotW}" y="${top + plotH + 14}" ${font(11)} text-anchor="end">${fmtInt(tMax)} s</text>`,
    );
    for (const m of it.marks) {
      const x = xOf(m.t).toFixed(1);
      out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" stroke="#c8423b" stroke-dasharray="4 3"/>`);
      out.push(`<text x="${x}" y="${top + 10}" ${font(10)} fill="#c8423b">${esc(m.text)}</text>`);
    }
    const pts = it.points.map((p) => `${xOf(p.t).toFixed(1)},${yOf(p.rssMiB ?? 0).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${pts}" fill="none" stroke="${COLORS.res}" stroke-width="1.5"/>`);
    y = top + plotH + 30;
  }
  return { svg: out.join('\n'), height: y - y0 };
}

/**
 * Writes the chart for `run` (the JSON object) to `file`; returns the path, or null if empty.
 * @param {RunOutput} run
 * @param {string} file
 */
export function writeChart(run, file) {
  /** @type {string[]} */
  const panels = [];
  let y = 34;
  /** @param {Panel} p */
  const add = (p) => {
    panels.push(p.svg);
    y += p.height + 10;
  };
  const tp = throughputItems(run);
  if (tp.length > 0) add(barPanel(y, 'throughput (msgs/s; blue = publish, green = deliver)', tp));
  const lat = latencyItems(run);
  if (lat.length > 0) add(latencyPanel(y, lat));
  const res = resourceItems(run);
  if (res.length > 0) add(resourcePanel(y, res));
  const ser = seriesItems(run);
  if (ser.length > 0) add(seriesPanel(y, ser));
  if (panels.length === 0) return null;
  const head =
    `nsq-ts bench ${run.startedAt} · commit ${run.commit ?? '?'} · ` +
    `${run.machine.cpus} × ${run.machine.cpuModel} · node ${run.machine.node}`;
  const svg = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}">`,
    `<title>${esc(head)}</title>`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="20" ${font()} fill="#555">${esc(head)}</text>`,
    ...panels,
    '</svg>',
    '',
  ].join('\n');
  fs.writeFileSync(file, svg);
  return file;
}
