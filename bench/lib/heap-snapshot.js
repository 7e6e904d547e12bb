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
 * again: it writes it on its main thread), the number of objects per name of `names` in it and
 * its three largest native blocks (KiB). The file is removed.
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
 * Objects (node type "object") per constructor name, and the sizes of the three largest native
 * blocks.
 * @param {{ snapshot: { meta: { node_fields: string[], node_types: [string[]] } }, nodes: number[], strings: string[] }} snap
 * @param {string[]} names
 */
function countObjects(snap, names) {
  const fields = snap.snapshot.meta.node_fields;
  const stride = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const types = snap.snapshot.meta.node_types[0];
  const objectType = types.indexOf('object');
  const nativeType = types.indexOf('native');
  const wanted = new Map(names.map((n) => [n, 0]));
  /** @type {number[]} */
  const natives = [];
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = nodes[i + typeAt];
    if (type === nativeType) natives.push(nodes[i + sizeAt]);
    if (type !== objectType) continue;
    const name = snap.strings[nodes[i + nameAt]];
    const n = wanted.get(name);
    if (n !== undefined) wanted.set(name, n + 1);
  }
  // The largest native blocks (ArrayBuffer backing stores: write buffers, read chunks), KiB.
  natives.sort((a, b) => b - a);
  for (const [i, size] of natives.slice(0, 3).entries()) wanted.set(`native#${i + 1} KiB`, Math.round(size / 1024));
  return Object.fromEntries(wanted);
}
