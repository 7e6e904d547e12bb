#!/usr/bin/env node
/**
 * Summary of a V8 `.cpuprofile` (what `node --cpu-prof` writes; bench/run.js --broker-cpu-prof DIR
 * runs the spawned broker that way): self time per function and per source file, as % of the
 * sampled time. `(idle)` is the event loop waiting, `(garbage collector)` V8's GC on the main
 * thread, `(program)` native code outside JavaScript (syscalls made synchronously, libuv).
 *
 * The profile's clock is CLOCK_MONOTONIC (µs), the clock of `process.hrtime` that the bench's
 * generators stamp their phases with, so a summary can cover one phase: `window` { fromMs, toMs }.
 *
 *   node bench/lib/cpuprofile.js FILE.cpuprofile [--top N] [--from MS --to MS]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { log } from './util.js';

/**
 * @import { CpuProfile, PhaseRow, ProfileSummary, ProfileWindow } from './types.js'
 */

/**
 * Where a script URL points, shortened to what tells one file from another.
 * @param {string} url
 */
function shortUrl(url) {
  if (url === '') return '';
  let p = url.startsWith('file://') ? fileURLToPath(url) : url;
  const at = p.lastIndexOf('/node_modules/');
  if (at >= 0) return p.slice(at + 1);
  const pkg = p.indexOf('/packages/');
  if (pkg >= 0) p = p.slice(pkg + 1);
  return p;
}

/**
 * Self time by function and by file, top `top` of each list, and by category (idle, GC,
 * (program), JS). With `window` (CLOCK_MONOTONIC ms as process.hrtime), only the samples taken in
 * it.
 * @param {CpuProfile} profile
 * @param {number} [top]
 * @param {ProfileWindow | null} [window]
 * @returns {ProfileSummary}
 */
export function summarize(profile, top = 20, window = null) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  /** @type {Map<number, number>} */
  const selfUs = new Map();
  const { samples, timeDeltas } = profile;
  const from = window === null ? Number.NEGATIVE_INFINITY : window.fromMs * 1000;
  const to = window === null ? Number.POSITIVE_INFINITY : window.toMs * 1000;
  let at = profile.startTime ?? 0;
  for (let i = 0; i < samples.length; i++) {
    at += timeDeltas[i] ?? 0;
    if (at < from || at > to) continue;
    // A sample's time is the delta to the next one (V8's convention in DevTools).
    const dt = timeDeltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  /** @type {Map<string, { name: string, where: string, us: number }>} */
  const fns = new Map();
  /** @type {Map<string, number>} */
  const files = new Map();
  const categories = { idle: 0, gc: 0, program: 0, js: 0 };
  let total = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const cf = node.callFrame;
    const name = cf.functionName || '(anonymous)';
    const file = shortUrl(cf.url);
    total += us;
    if (name === '(idle)') categories.idle += us;
    else if (name === '(garbage collector)') categories.gc += us;
    else if (name === '(program)') categories.program += us;
    else categories.js += us;
    const where = file === '' ? '' : `${file}:${cf.lineNumber + 1}`;
    const key = `${name} ${where}`;
    const f = fns.get(key) ?? { name, where, us: 0 };
    f.us += us;
    fns.set(key, f);
    const fileKey = file === '' ? name : file;
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  /** @param {number} us */
  const ms = (us) => Math.round(us / 100) / 10;
  /** @param {number} us */
  const pct = (us) => (total > 0 ? Math.round((us / total) * 1000) / 10 : 0);
  /** @param {number} us */
  const share = (us) => ({ ms: ms(us), pct: pct(us) });
  const wallUs =
    window === null
      ? (profile.endTime ?? 0) - (profile.startTime ?? 0)
      : Math.max(0, Math.min(to, profile.endTime ?? 0) - Math.max(from, profile.startTime ?? 0));
  return {
    totalMs: ms(total),
    wallMs: ms(wallUs),
    /** The profile's own span, CLOCK_MONOTONIC ms (to tell which phases it covers). */
    span: { fromMs: ms(profile.startTime ?? 0), toMs: ms(profile.endTime ?? 0) },
    categories: {
      idle: share(categories.idle),
      gc: share(categories.gc),
      program: share(categories.program),
      js: share(categories.js),
    },
    functions: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: ms(f.us), pct: pct(f.us) })),
    files: [...files.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([file, us]) => ({ file, selfMs: ms(us), pct: pct(us) })),
  };
}

/**
 * summarize() of a profile file, plus each of `windows` it covers summarised alone.
 * @param {string} file
 * @param {number} [top]
 * @param {(ProfileWindow & { phase: string })[]} [windows]
 * @returns {ProfileSummary}
 */
export function summarizeFile(file, top = 20, windows = []) {
  /** @type {CpuProfile} */
  const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
  const summary = summarize(profile, top);
  if (windows.length === 0) return summary;
  // Each window the profile covers (the phases of the broker that wrote it), summarised alone.
  summary.windows = windows
    .filter((w) => w.fromMs < summary.span.toMs && w.toMs > summary.span.fromMs)
    .map((w) => ({ ...w, ...summarize(profile, top, w) }));
  return summary;
}

/**
 * The summary as text lines (what run.js prints after a profiled scenario).
 * @param {ProfileSummary} s
 * @param {number} [top]
 */
export function formatSummary(s, top = 12) {
  const c = s.categories;
  const busy = s.totalMs - c.idle.ms;
  /** @param {number} x */
  const ofBusy = (x) => (busy > 0 ? ((x / busy) * 100).toFixed(1) : '0.0');
  const lines = [
    `sampled ${s.totalMs} ms (wall ${s.wallMs} ms): idle ${c.idle.pct}%, busy ${(100 - c.idle.pct).toFixed(1)}% — ` +
      `of busy: JS ${ofBusy(c.js.ms)}%, GC ${ofBusy(c.gc.ms)}%, (program) ${ofBusy(c.program.ms)}%`,
    'self time (% of busy), by function:',
  ];
  for (const f of s.functions.filter((x) => x.name !== '(idle)').slice(0, top)) {
    lines.push(`  ${ofBusy(f.selfMs).padStart(5)}%  ${f.name}  ${f.where}`);
  }
  lines.push('by file:');
  for (const f of s.files.filter((x) => x.file !== '(idle)').slice(0, top)) {
    lines.push(`  ${ofBusy(f.selfMs).padStart(5)}%  ${f.file}`);
  }
  return lines;
}

/**
 * The .cpuprofile files in `dir` (none without --broker-cpu-prof).
 * @param {string | null} dir
 * @returns {Set<string>}
 */
export function listProfiles(dir) {
  if (dir === null) return new Set();
  try {
    return new Set(fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')));
  } catch {
    return new Set();
  }
}

/**
 * Summaries of the profiles written to `dir` since `before` (a broker writes one as it exits),
 * printed and returned: the whole profile, and each of `phases` it covers on its own (their rate
 * windows).
 * @param {string | null} dir
 * @param {Set<string>} before
 * @param {PhaseRow[]} [phases]
 * @returns {ProfileSummary[] | undefined}
 */
export function summarizeProfiles(dir, before, phases = []) {
  if (dir === null) return undefined;
  const out = [];
  const windows = phases
    .filter((p) => (p.startAtMs ?? 0) > 0 && (p.endAtMs ?? 0) > (p.startAtMs ?? 0))
    .map((p) => ({ phase: p.phase, fromMs: p.startAtMs ?? 0, toMs: p.endAtMs ?? 0 }));
  for (const f of [...listProfiles(dir)].filter((x) => !before.has(x)).sort()) {
    const file = path.join(dir, f);
    try {
      const summary = summarizeFile(file, 25, windows);
      const shown = path.relative(process.cwd(), file);
      log(`  broker CPU profile ${shown.startsWith('..') ? file : shown}:`);
      for (const line of formatSummary(summary, 12)) log(`    ${line}`);
      for (const w of summary.windows ?? []) {
        log(`    phase ${w.phase} (${(w.wallMs / 1000).toFixed(2)} s):`);
        for (const line of formatSummary(w, 6)) log(`      ${line}`);
      }
      out.push({ file, ...summary });
    } catch (err) {
      log(`  broker CPU profile ${file}: not read: ${/** @type {Error} */ (err).message}`);
    }
  }
  return out;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  /** @param {string} name */
  const flag = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args.splice(i, 2)[1]) : null;
  };
  const top = flag('--top') ?? 20;
  const fromMs = flag('--from');
  const toMs = flag('--to');
  if (args.length !== 1 || (fromMs === null) !== (toMs === null)) {
    process.stderr.write('usage: node bench/lib/cpuprofile.js FILE.cpuprofile [--top N] [--from MS --to MS]\n');
    process.exit(2);
  }
  const profile = JSON.parse(fs.readFileSync(args[0], 'utf8'));
  const summary = summarize(profile, top + 5, fromMs === null || toMs === null ? null : { fromMs, toMs });
  for (const line of formatSummary(summary, top)) process.stdout.write(`${line}\n`);
}
