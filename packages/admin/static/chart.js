// Formatting and SVG charts for nsqadmin's pages. A chart has a y axis in messages per second
// (0 to a round maximum, at least 1/s so an idle chart says 0/s rather than inventing a peak), a
// time axis relative to now, a legend, and gaps where a series had no sample.

export function esc(value) {
  return String(value).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c],
  );
}

export const fmt = (n) => Number(n).toLocaleString('en-US');

/** A rate in messages/s; null (not sampled yet) is a dash. */
export function fmtRate(r) {
  if (r === null || r === undefined) return '–';
  if (r === 0) return '0';
  if (r >= 100) return fmt(Math.round(r));
  return r >= 10 ? r.toFixed(1) : r.toFixed(2).replace(/\.?0+$/, '') || '0';
}

export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The smallest of 1, 2, 2.5, 5 × 10^k that is ≥ x (and ≥ 1: the idle scale). */
function niceCeil(x) {
  if (!(x > 1)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/** A time step for about five ticks over `spanMs`. */
function tickStep(spanMs) {
  const steps = [10e3, 30e3, 60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 2 * 3600e3];
  return steps.find((s) => spanMs / s <= 6) ?? 6 * 3600e3;
}

function agoLabel(ms) {
  if (ms <= 0) return 'now';
  if (ms < 60e3) return `−${Math.round(ms / 1000)} s`;
  if (ms < 3600e3) return `−${Math.round(ms / 60e3)} min`;
  const h = ms / 3600e3;
  return `−${Number.isInteger(h) ? h : h.toFixed(1)} h`;
}

/** Polyline point lists for one series, split where it has no value. */
function segments(points, x, y) {
  const out = [];
  let current = [];
  for (const p of points) {
    if (p.rate === null) {
      if (current.length > 0) out.push(current);
      current = [];
    } else current.push(`${x(p.at).toFixed(1)},${y(p.rate).toFixed(1)}`);
  }
  if (current.length > 0) out.push(current);
  return out;
}

/**
 * A rate chart. `lines`: [{ label, cls, points: [{ at, rate|null }] }]; `now` and `spanMs` set
 * the time axis; `current` (per line) is what the caption says the rate is now.
 */
export function rateChart({ title, lines, now, spanMs, id }) {
  const w = 760;
  const h = 200;
  const left = 56;
  const right = 12;
  const top = 24;
  const bottom = 28;
  const from = now - spanMs;
  const visible = lines.map((l) => ({ ...l, points: l.points.filter((p) => p.at >= from && p.at <= now) }));
  const peak = Math.max(0, ...visible.flatMap((l) => l.points.map((p) => p.rate ?? 0)));
  const max = niceCeil(peak);
  const x = (at) => left + ((at - from) / spanMs) * (w - left - right);
  const y = (rate) => top + (1 - rate / max) * (h - top - bottom);

  const yTicks = [0, max / 2, max]
    .map(
      (v) => `<line class="grid" x1="${left}" x2="${w - right}" y1="${y(v)}" y2="${y(v)}"/>
      <text class="tick" x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${fmtRate(v)}/s</text>`,
    )
    .join('');
  const step = tickStep(spanMs);
  const xTicks = [];
  for (let ago = 0; ago <= spanMs + 1; ago += step) {
    const px = x(now - ago);
    xTicks.push(`<line class="axis" x1="${px}" x2="${px}" y1="${h - bottom}" y2="${h - bottom + 4}"/>
      <text class="tick" x="${px}" y="${h - bottom + 16}" text-anchor="${ago === 0 ? 'end' : 'middle'}">${agoLabel(ago)}</text>`);
  }
  const paths = visible
    .map((l) =>
      segments(l.points, x, y)
        .map((pts) =>
          pts.length === 1
            ? `<circle class="line ${l.cls}" cx="${pts[0].split(',')[0]}" cy="${pts[0].split(',')[1]}" r="1.5"/>`
            : `<polyline class="line ${l.cls}" points="${pts.join(' ')}"/>`,
        )
        .join(''),
    )
    .join('');
  const summary = visible
    .map((l) => {
      const last = [...l.points].reverse().find((p) => p.rate !== null);
      const linePeak = Math.max(0, ...l.points.map((p) => p.rate ?? 0));
      return `${l.label} ${fmtRate(last?.rate ?? null)}/s now, peak ${fmtRate(linePeak)}/s`;
    })
    .join('; ');
  const desc = `${title}, messages per second over the last ${fmtDuration(spanMs)}: ${summary}`;
  const legend = visible
    .map((l) => `<span class="legend-item"><span class="swatch ${l.cls}"></span>${esc(l.label)}</span>`)
    .join('');
  return `<figure class="chart"${id ? ` id="${esc(id)}"` : ''}>
    <figcaption><strong>${esc(title)}</strong> <span class="legend">${legend}</span></figcaption>
    <svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(desc)}">
      ${yTicks}
      <line class="axis" x1="${left}" x2="${w - right}" y1="${h - bottom}" y2="${h - bottom}"/>
      <line class="axis" x1="${left}" x2="${left}" y1="${top}" y2="${h - bottom}"/>
      <text class="unit" x="${left - 6}" y="11" text-anchor="end">msg/s</text>
      ${xTicks.join('')}
      ${paths}
    </svg>
    <p class="caption" data-testid="${esc(id ?? 'chart')}-caption">${esc(summary)} · last ${fmtDuration(spanMs)}</p>
  </figure>`;
}

/** A table-cell sparkline (no axes; the cell beside it has the number). */
export function spark(points, now, spanMs) {
  const w = 100;
  const h = 20;
  const from = now - spanMs;
  const visible = points.filter((p) => p.at >= from);
  const max = niceCeil(Math.max(0, ...visible.map((p) => p.rate ?? 0)));
  const x = (at) => ((at - from) / spanMs) * w;
  const y = (rate) => h - 1 - (rate / max) * (h - 2);
  const lines = segments(visible, x, y)
    .map((pts) => `<polyline class="line ingress" points="${pts.join(' ')}"/>`)
    .join('');
  return `<svg class="spark" width="${w}" height="${h}" aria-hidden="true"><line class="grid" x1="0" x2="${w}" y1="${h - 0.5}" y2="${h - 0.5}"/>${lines}</svg>`;
}
