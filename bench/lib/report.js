/** The end of a run: the table, the warnings under it, and the JSON and SVG under --out. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeChart } from './svg.js';
import { fmt1, fmtInt, log, MiB } from './util.js';

/**
 * @import { Machine, RunOutput, ScenarioResult } from './types.js'
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** @returns {Machine} */
export function machine() {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    totalMemMiB: Math.round(os.totalmem() / MiB),
    platform: `${os.platform()} ${os.release()}`,
    node: process.version,
  };
}

/** The checkout's short commit, `-dirty` with uncommitted changes to tracked files. */
export function gitCommit() {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? sha : `${sha}-dirty`;
  } catch {
    return null;
  }
}

/**
 * One row per phase, columns aligned.
 * @param {ScenarioResult[]} results
 */
export function table(results) {
  const rows = [
    [
      'scenario',
      'phase',
      'msgs',
      'secs',
      'msgs/s',
      'MiB/s',
      'gen CPU max',
      'broker CPU',
      'broker RSS',
      'other CPU',
      'notes',
    ],
  ];
  for (const r of results) {
    if (r.phases.length === 0) rows.push([r.name, 'FAILED', '', '', '', '', '', '', '', '', '']);
    r.phases.forEach((p, i) => {
      const genCpu = p.generators.length > 0 ? Math.max(...p.generators.map((g) => g.cpuPct)) : null;
      rows.push([
        i === 0 ? r.name : '',
        p.complete === false ? `${p.phase} (INCOMPLETE)` : p.phase,
        fmtInt(p.msgs),
        p.seconds.toFixed(2),
        fmtInt(p.msgsPerSec),
        p.mibPerSec.toFixed(1),
        genCpu === null ? '' : `${fmt1(genCpu)}%`,
        p.broker ? `${fmt1(p.broker.cpuPct)}%` : '',
        p.broker?.rssKiB ? `${fmtInt(p.broker.rssKiB / 1024)} MiB` : '',
        p.otherCpuPct === null ? '' : `${fmt1(p.otherCpuPct)}%`,
        p.note ?? '',
      ]);
    });
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const right = new Set([2, 3, 4, 5, 6, 7, 8, 9]);
  const lines = rows.map((row) =>
    row
      .map((cell, c) => (right.has(c) ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd(),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  return lines.join('\n');
}

/**
 * The table, what its CPU columns mean, warnings about a busy machine or a busy generator, and
 * each scenario's backlog, notes and failure.
 * @param {ScenarioResult[]} results
 * @param {Machine} m
 */
export function printSummary(results, m) {
  log(`\n${table(results)}`);
  const gensMax = Math.max(...results.flatMap((r) => r.phases.flatMap((p) => p.generators.map((g) => g.cpuPct))), 0);
  log(
    `\ngen CPU = busiest load-generator process, % of one core (near 100% means the generator may be the limit);` +
      `\nbroker CPU / RSS = spawned broker over the timed phase / at its end (${m.cpus} cores on this machine);` +
      `\nother CPU = every other process on the machine over the phase (the numbers are only clean near 0%).`,
  );
  const busiest = Math.max(...results.flatMap((r) => r.phases.map((p) => p.otherCpuPct ?? 0)), 0);
  if (busiest >= 25)
    log(`warning: other processes used up to ${busiest}% CPU during a phase: the machine was not idle`);
  if (gensMax >= 90) log(`warning: a generator process reached ${gensMax}% CPU: its numbers may be generator-bound`);
  for (const r of results) {
    if (r.backlog !== undefined) log(`${r.name}: backlog at the end ${fmtInt(r.backlog)} messages`);
    for (const note of r.notes) log(`${r.name}: ${note}`);
    if (!r.ok && r.error) log(`${r.name}: FAILED: ${r.error}`);
  }
}

/**
 * Writes `<dir>/<startedAt>.json` and its chart beside it.
 * @param {RunOutput} out
 * @param {string} dir
 */
export function writeResults(out, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${out.startedAt.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  log(`\nresults: ${path.relative(process.cwd(), file)}`);
  try {
    const svg = writeChart(out, file.replace(/\.json$/, '.svg'));
    if (svg !== null) log(`chart:   ${path.relative(process.cwd(), svg)}`);
  } catch (err) {
    log(`chart: not written: ${/** @type {Error} */ (err).message}`);
  }
}
