#!/usr/bin/env node
/**
 * Screenshots of every nsqadmin page with a real cluster under load, for docs/ (the README links
 * them). It starts its own processes on ports the kernel picks — 2 × nsqlookupd, 3 × nsqd and
 * nsqadmin, from this checkout's bins — builds a small but realistic picture (a paused channel
 * piling up a backlog, a slow consumer falling behind, a fast one keeping up, a topic paused on one
 * node, a topic only nsqlookupd still lists), publishes at a varying rate for a while so the charts
 * have a shape, then drives Debian's Chromium (playwright-core) through every page.
 *
 *   npm run build && node scripts/admin-screenshots.js [--out DIR] [--warmup SECONDS]
 *
 * Writes DIR/admin-{topics,topic,channel,nodes,node,counter,lookup}.png (DIR defaults to docs/).
 * Everything it started is stopped and its data directories removed, also on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = '/usr/bin/chromium';
const BINS = {
  nsqd: path.join(ROOT, 'packages/nsqd/bin/nsqd.js'),
  nsqlookupd: path.join(ROOT, 'packages/lookupd/bin/nsqlookupd.js'),
  nsqadmin: path.join(ROOT, 'packages/admin/bin/nsqadmin.js'),
};
const START_TIMEOUT_MS = 20_000;

function parseArgs(argv) {
  const opts = { out: path.join(ROOT, 'docs'), warmupS: 90 };
  for (let i = 0; i < argv.length; i++) {
    const m = /^--(out|warmup)(?:=(.*))?$/.exec(argv[i]);
    if (m === null) {
      process.stderr.write('usage: node scripts/admin-screenshots.js [--out DIR] [--warmup SECONDS]\n');
      process.exit(2);
    }
    const value = m[2] ?? argv[++i];
    if (m[1] === 'out') opts.out = path.resolve(value);
    else opts.warmupS = Number(value);
  }
  if (!Number.isFinite(opts.warmupS) || opts.warmupS < 0) throw new Error('--warmup must be a number of seconds');
  return opts;
}

const say = (line) => process.stdout.write(`[screenshots] ${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- processes ----

const children = [];

/** Starts a bin and resolves with the addresses its start-up line announces. */
function start(name, bin, args) {
  const child = spawn(process.execPath, [bin, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start:\n${output}`)), START_TIMEOUT_MS);
    const onData = (chunk) => {
      output += chunk;
      const m = /listening on (?:TCP (\S+), )?HTTP (\S+)/.exec(output);
      if (m === null) return;
      clearTimeout(timer);
      resolve({ name, tcp: m[1], http: m[2] });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}):\n${output}`));
    });
  });
}

async function stopAll() {
  await Promise.all(
    children.map(
      (child) =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', resolve);
          child.kill('SIGTERM');
        }),
    ),
  );
}

async function http(address, pathAndQuery, body) {
  const res = await fetch(`http://${address}${pathAndQuery}`, { method: 'POST', body });
  if (!res.ok) throw new Error(`${address}${pathAndQuery}: ${res.status} ${await res.text()}`);
  return res;
}

async function until(what, check, timeoutMs = START_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// ---- the cluster and its load ----

async function startCluster(dataDir) {
  const loopback = ['--tcp-address=127.0.0.1:0', '--http-address=127.0.0.1:0', '--broadcast-address=127.0.0.1'];
  const lookupds = await Promise.all(
    [1, 2].map((n) => start(`nsqlookupd-${n}`, BINS.nsqlookupd, [...loopback, '--log-level=warn'])),
  );
  const nsqds = await Promise.all(
    [1, 2, 3].map((n) => {
      const dataPath = path.join(dataDir, `nsqd-${n}`);
      fs.mkdirSync(dataPath);
      return start(`nsqd-${n}`, BINS.nsqd, [
        ...loopback,
        ...lookupds.map((l) => `--lookupd-tcp-address=${l.tcp}`),
        `--data-path=${dataPath}`,
        `--node-id=${n}`,
        '--log-level=warn',
      ]);
    }),
  );
  await until('every nsqd to register', async () => {
    const res = await fetch(`http://${lookupds[0].http}/nodes`);
    return (await res.json()).producers.length === nsqds.length;
  });
  const admin = await start('nsqadmin', BINS.nsqadmin, [
    '--http-address=127.0.0.1:0',
    ...lookupds.map((l) => `--lookupd-http-address=${l.http}`),
    '--sample-interval=1s',
    '--log-level=warn',
  ]);
  return { lookupds, nsqds, admin };
}

/** Topics, channels and consumers whose numbers tell a story on every page. */
async function buildScene({ lookupds, nsqds }, client) {
  for (const n of nsqds) {
    for (const topic of ['orders', 'clicks', 'signups']) await http(n.http, `/topic/create?topic=${topic}`);
    for (const channel of ['billing', 'shipping', 'analytics']) {
      await http(n.http, `/channel/create?topic=orders&channel=${channel}`);
    }
    await http(n.http, '/channel/create?topic=clicks&channel=counter');
    await http(n.http, '/channel/create?topic=signups&channel=mailer');
    await http(n.http, '/channel/pause?topic=orders&channel=billing'); // its backlog grows
  }
  await http(nsqds[2].http, '/topic/pause?topic=signups'); // paused on one node only
  // A topic whose nsqd went away: only nsqlookupd lists it (the lookup page offers to delete it).
  for (const l of lookupds) {
    await http(l.http, '/topic/create?topic=legacy-events');
    await http(l.http, '/channel/create?topic=legacy-events&channel=archiver');
  }
  const tcp = nsqds.map((n) => n.tcp);
  const consumers = [
    // Slow: 1 in flight and ~25 ms a message per connection, below the rate orders come in.
    new client.Consumer({
      topic: 'orders',
      channel: 'shipping',
      nsqdAddresses: tcp,
      maxInFlight: 3,
      clientId: 'shipping-worker',
      handler: () => sleep(25),
    }),
    new client.Consumer({
      topic: 'orders',
      channel: 'analytics',
      nsqdAddresses: tcp,
      maxInFlight: 300,
      clientId: 'analytics',
      handler: () => undefined,
    }),
    new client.Consumer({
      topic: 'clicks',
      channel: 'counter',
      nsqdAddresses: tcp,
      maxInFlight: 300,
      clientId: 'click-counter',
      handler: () => undefined,
    }),
    new client.Consumer({
      topic: 'signups',
      channel: 'mailer',
      nsqdAddresses: tcp,
      maxInFlight: 10,
      clientId: 'mailer',
      handler: () => undefined,
    }),
  ];
  for (const c of consumers) await c.connect();
  const producer = new client.Producer({ nsqdAddresses: tcp, clientId: 'web-frontend' });
  await producer.connect();
  return { consumers, producer };
}

/** Publishes every 100 ms at rates that rise and fall, so the charts have a shape. */
function publishLoad(producer) {
  let tick = 0;
  let failures = 0;
  const batch = (n, prefix) => Array.from({ length: Math.max(0, Math.round(n)) }, (_, i) => `${prefix}-${tick}-${i}`);
  const timer = setInterval(() => {
    tick++;
    const wave = Math.sin(tick / 60);
    const sends = [
      producer.publishMany('orders', batch(14 + 8 * wave, 'order')),
      producer.publishMany('clicks', batch(40 + 25 * Math.sin(tick / 23), 'click')),
      ...(tick % 4 === 0 ? [producer.publish('signups', `signup-${tick}`)] : []),
    ];
    for (const s of sends) s.catch(() => failures++);
  }, 100);
  return () => {
    clearInterval(timer);
    return failures;
  };
}

// ---- the browser ----

const PAGES = [
  ['topics', '#/topics', 'Topics'],
  ['topic', '#/topics/orders', 'Topic orders'],
  ['channel', '#/topics/orders/shipping', 'Channel orders / shipping'],
  ['nodes', '#/nodes', 'Nodes'],
  ['node', null, 'Node'],
  ['counter', '#/counter', 'Messages'],
  ['lookup', '#/lookup', 'Lookup'],
];

async function screenshots(adminUrl, nodeId, outDir) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    for (const [name, hash, heading] of PAGES) {
      await page.goto(`${adminUrl}${hash ?? `#/nodes/${encodeURIComponent(nodeId)}`}`);
      await page.waitForFunction(
        (h) =>
          document.querySelector('h1')?.textContent?.startsWith(h) &&
          /^live · rates/.test(document.querySelector('#live')?.textContent ?? ''),
        heading,
      );
      await sleep(1500); // a pushed sample or two after the history arrived
      const file = path.join(outDir, `admin-${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      say(`wrote ${path.relative(ROOT, file)}`);
    }
  } finally {
    await browser.close();
  }
}

// ---- main ----

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is not installed (apt-get install -y chromium)`);
  for (const bin of Object.values(BINS)) if (!fs.existsSync(bin)) throw new Error(`${bin} missing`);
  if (!fs.existsSync(path.join(ROOT, 'packages/client/dist/index.js'))) throw new Error('run `npm run build` first');
  const client = await import(path.join(ROOT, 'packages/client/dist/index.js'));
  fs.mkdirSync(opts.out, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsqadmin-screenshots-'));
  let scene = null;
  let stopLoad = () => 0;
  const cleanup = async () => {
    const failures = stopLoad();
    if (failures > 0) say(`${failures} publishes failed`);
    if (scene !== null) {
      await scene.producer.close().catch(() => undefined);
      await Promise.all(scene.consumers.map((c) => c.close().catch(() => undefined)));
    }
    await stopAll();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  const onSignal = () => void cleanup().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const cluster = await startCluster(dataDir);
    say(`cluster up: nsqadmin at http://${cluster.admin.http}/`);
    scene = await buildScene(cluster, client);
    stopLoad = publishLoad(scene.producer);
    for (let left = opts.warmupS; left > 0; left -= 10) {
      say(`publishing; screenshots in ${left} s`);
      await sleep(Math.min(10, left) * 1000);
    }
    await screenshots(`http://${cluster.admin.http}/`, cluster.nsqds[0].http, opts.out);
  } finally {
    await cleanup();
  }
}

main().catch((err) => {
  process.stderr.write(`[screenshots] ${err instanceof Error ? err.message : String(err)}\n`);
  void stopAll().finally(() => process.exit(1));
});
