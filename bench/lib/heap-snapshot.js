/**
 * A spawned broker's heap after a full GC: node started with `heapSnapshotFlags(dir)` writes a
 * heap snapshot (a full GC first) on SIGUSR2; `takeHeapSnapshot` asks for one, waits until it
 * is written and counts the objects of some constructors in it. An idle broker runs no GC of its
 * own, so what its RSS holds after a run is partly garbage: the reading after this is what the
 * broker retains.
 */
import fs from 'node:fs';
import path from 'node:path';
import { httpRequest } from './broker.js';
import { sleep } from './util.js';

/**
 * @import { SpawnedBroker } from './types.js'
 */

/** @param {string} dir where the snapshots go */
export const heapSnapshotFlags = (dir) => ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];

/**
 * SIGUSR2 to `broker`, then, once the snapshot in `dir` is written (the broker answers /ping
 * again: it writes it on its main thread), the number of objects per name of `names` in it. The
 * file is removed.
 * @param {SpawnedBroker} broker
 * @param {string} dir
 * @param {string[]} names constructor names to count
 * @param {number} [timeoutMs]
 * @returns {Promise<Record<string, number>>}
 */
export async function takeHeapSnapshot(broker, dir, names, timeoutMs = 120_000) {
  const before = new Set(fs.readdirSync(dir));
  process.kill(/** @type {number} */ (broker.pid), 'SIGUSR2');
  const deadline = Date.now() + timeoutMs;
  /** @type {string | undefined} */
  let file;
  while (file === undefined) {
    if (Date.now() > deadline) throw new Error(`no heap snapshot in ${dir} within ${timeoutMs} ms`);
    await sleep(100);
    file = fs.readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
  }
  await httpRequest(broker.http, 'GET', '/ping', timeoutMs);
  const full = path.join(dir, file);
  try {
    return countObjects(JSON.parse(fs.readFileSync(full, 'utf8')), names);
  } finally {
    fs.rmSync(full, { force: true });
  }
}

/**
 * Objects (node type "object") per constructor name.
 * @param {{ snapshot: { meta: { node_fields: string[], node_types: [string[]] } }, nodes: number[], strings: string[] }} snap
 * @param {string[]} names
 */
function countObjects(snap, names) {
  const fields = snap.snapshot.meta.node_fields;
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const objectType = snap.snapshot.meta.node_types[0].indexOf('object');
  const wanted = new Map(names.map((n) => [n, 0]));
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    if (nodes[i + typeAt] !== objectType) continue;
    const name = snap.strings[nodes[i + nameAt]];
    const n = wanted.get(name);
    if (n !== undefined) wanted.set(name, n + 1);
  }
  return Object.fromEntries(wanted);
}
