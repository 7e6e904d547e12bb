/**
 * A throwaway single-member etcd for the replication scenarios: /usr/bin/etcd (Debian's
 * etcd-server) on two free loopback ports with its own data dir, ready once /health answers.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './broker.js';
import { sleep } from './util.js';

export const ETCD_BIN = '/usr/bin/etcd';
const LOOPBACK = '127.0.0.1';

/**
 * @typedef {object} Etcd
 * @property {string} url the client URL, for --etcd-endpoints
 * @property {() => Promise<void>} stop SIGTERM, then SIGKILL after 10 s; removes the data dir
 */

/** @returns {Promise<Etcd>} */
export async function startEtcd() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsq-ts-bench-etcd-'));
  const url = `http://${LOOPBACK}:${await freePort()}`;
  const peer = `http://${LOOPBACK}:${await freePort()}`;
  const child = spawn(
    ETCD_BIN,
    [
      '--name=bench',
      `--data-dir=${dir}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=bench=${peer}`,
    ],
    { stdio: 'ignore' },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const onExit = () => child.kill('SIGKILL');
  process.on('exit', onExit);
  const stop = async () => {
    process.off('exit', onExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000).then(() => child.kill('SIGKILL'))]);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  while (!(await fetch(`${url}/health`).catch(() => null))?.ok) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`etcd did not answer /health on ${url}`);
    }
    await sleep(50);
  }
  return { url, stop };
}
