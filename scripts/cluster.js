#!/usr/bin/env node
/**
 * `npm run cluster`: the docker-compose topology (2 × nsqlookupd, 3 × nsqd, nsqadmin) as local
 * processes on 127.0.0.1, with prefixed logs, stopped cleanly on Ctrl-C.
 *
 * Port plan, from a base port B (default 4150; `--base-port` or NSQ_CLUSTER_BASE_PORT):
 *
 *   nsqd-1        TCP B       HTTP B+1      (4150 / 4151)
 *   nsqd-2        TCP B+100   HTTP B+101    (4250 / 4251)
 *   nsqd-3        TCP B+200   HTTP B+201    (4350 / 4351)
 *   nsqlookupd-1  TCP B+10    HTTP B+11     (4160 / 4161)
 *   nsqlookupd-2  TCP B+110   HTTP B+111    (4260 / 4261)
 *   nsqadmin                  HTTP B+21     (4171)
 *
 * so with the default base every node 1 (and nsqadmin) keeps NSQ's own ports, and
 * docker-compose.yml uses the same numbers. `--base-port=0` puts every node on a port the OS
 * hands out instead (read back from the node's "listening on" line): clusters side by side, and
 * tests that must not guess which ports are free. Each nsqd gets `--data-path=<data-dir>/nsqd-N` (default
 * `.cluster/` at the root); nsqadmin gets `--lookupd-http-address` for both lookupds and starts last.
 *
 * Failure policy: while the cluster starts, any process that exits (a port in use, a bad flag)
 * stops everything and the script exits 1. Once it is up, a process that dies is reported loudly
 * and the others keep running — killing a node by hand is how failover is tried out — and the
 * script exits 1 only when none is left. On SIGINT/SIGTERM nsqadmin, then the nsqds, then the
 * lookupds get SIGTERM (SIGKILL if still alive after STOP_TIMEOUT_MS), and the script exits 0.
 *
 * The children run in their own process groups, so a terminal's Ctrl-C reaches only this script,
 * which then stops each child exactly once (a second signal makes nsqd skip its clean shutdown).
 *
 * `--ha` runs the nsqds as one replica group instead (README "How to run a group"): etcd first
 * (`/usr/bin/etcd`, client B+29, peer B+30, its data in <data-dir>/etcd), then the members
 * nsqd-1..N (`--ha-members`, 2 or 3) with `--ha-group=cluster`, `--replication-address` on their
 * TCP port + 3 and `--sync-every=1`. A member is up once its GET /ha answers (a follower's /ping
 * is 503 by design); the script then waits until one leads and the others are in sync. Only the
 * leader listens on its TCP port and registers with the lookupds, so nsqadmin is also given every
 * member's HTTP address. etcd stops last, after the lookupds.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NSQD_BIN = path.join(ROOT, 'packages/nsqd/bin/nsqd.js');
const LOOKUPD_BIN = path.join(ROOT, 'packages/lookupd/bin/nsqlookupd.js');
const ADMIN_BIN = path.join(ROOT, 'packages/admin/bin/nsqadmin.js');
const ETCD_BIN = process.env.NSQ_CLUSTER_ETCD_BIN ?? '/usr/bin/etcd';
const HOST = '127.0.0.1';
const HA_GROUP = 'cluster';
const DEFAULT_BASE_PORT = 4150;
const MAX_PORT_OFFSET = 211;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 10_000;

const HELP = `usage: npm run cluster -- [options]   (or: node scripts/cluster.js [options])

Starts 2 × nsqlookupd, 3 × nsqd and nsqadmin on ${HOST}; Ctrl-C stops them all.

  --base-port N     shift every port: nsqd-1 N/N+1, nsqd-2 N+100/N+101, nsqd-3 N+200/N+201,
                    nsqlookupd-1 N+10/N+11, nsqlookupd-2 N+110/N+111, nsqadmin N+21
                    (default ${DEFAULT_BASE_PORT}, or NSQ_CLUSTER_BASE_PORT); 0: ports the OS picks
  --data-dir PATH   parent of the nsqds' --data-path directories
                    (default .cluster/ at the repository root, or NSQ_CLUSTER_DATA_DIR)
  --ha              the nsqds form one replica group: etcd (${ETCD_BIN}, or NSQ_CLUSTER_ETCD_BIN;
                    client N+29, peer N+30, data in <data-dir>/etcd) starts first, each member
                    replicates on its TCP port + 3; only the leader serves NSQ clients
  --ha-members N    members of the group with --ha: 2 or 3 (default 3)
  --help
`;

// ---- command line ----

function parseArgs(argv) {
  const opts = {
    basePort: process.env.NSQ_CLUSTER_BASE_PORT ?? String(DEFAULT_BASE_PORT),
    dataDir: process.env.NSQ_CLUSTER_DATA_DIR ?? path.join(ROOT, '.cluster'),
    ha: false,
    haMembers: '3',
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(HELP);
      process.exit(0);
    }
    if (arg === '--ha' || arg === '-ha') {
      opts.ha = true;
      continue;
    }
    const m = /^--?(base-port|data-dir|ha-members)(?:=(.*))?$/.exec(arg);
    if (m === null) usageError(`unknown argument ${arg}`);
    let value = m[2];
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined) usageError(`${arg} needs a value`);
    }
    if (m[1] === 'base-port') opts.basePort = value;
    else if (m[1] === 'ha-members') opts.haMembers = value;
    else opts.dataDir = value;
  }
  if (opts.haMembers !== '2' && opts.haMembers !== '3')
    usageError(`--ha-members must be 2 or 3, not ${opts.haMembers}`);
  const base = Number(opts.basePort);
  if (!Number.isInteger(base) || base < 0 || base + MAX_PORT_OFFSET > 65535) {
    usageError(`base port must be 0 or an integer in [1, ${65535 - MAX_PORT_OFFSET}], not ${opts.basePort}`);
  }
  return {
    basePort: base,
    dataDir: path.resolve(opts.dataDir),
    ha: opts.ha,
    haMembers: opts.ha ? Number(opts.haMembers) : 0,
  };
}

function usageError(message) {
  process.stderr.write(`cluster: ${message}\n\n${HELP}`);
  process.exit(2);
}

/** A port free now (bound and released at once), for what must be known before it starts: etcd, replication. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * The nodes, lookupds (and etcd) first so the nsqds' first connection succeeds, and nsqadmin last
 * so its first look at the cluster finds every nsqd. Ports are 0 with base port 0 until the node
 * says where it listens; `args()` is built when the node starts, so the nsqds and nsqadmin get the
 * lookupds' real ports. `ready` says whether a node answers as it should once up.
 */
async function topology({ basePort, dataDir, ha, haMembers }) {
  const at = (offset) => (basePort === 0 ? 0 : basePort + offset);
  const fixedOrFree = (offset) => (basePort === 0 ? freePort() : Promise.resolve(basePort + offset));
  const lookupds = [1, 2].map((n) => ({
    name: `nsqlookupd-${n}`,
    kind: 'nsqlookupd',
    tcpPort: at(10 + (n - 1) * 100),
    httpPort: at(11 + (n - 1) * 100),
    ready: pingOk,
  }));
  let etcd = null;
  if (ha) {
    const clientPort = await fixedOrFree(29);
    const peerPort = await fixedOrFree(30);
    etcd = {
      name: 'etcd',
      kind: 'etcd',
      command: ETCD_BIN,
      tcpPort: null,
      httpPort: clientPort,
      peerPort,
      dataPath: path.join(dataDir, 'etcd'),
      ready: etcdHealthy,
    };
    const client = `http://${HOST}:${clientPort}`;
    const peer = `http://${HOST}:${peerPort}`;
    etcd.args = () => [
      '--name=cluster',
      `--data-dir=${etcd.dataPath}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=cluster=${peer}`,
      '--logger=zap',
      '--log-outputs=stderr',
      '--log-level=warn',
    ];
  }
  const nsqds = [];
  for (let n = 1; n <= (ha ? haMembers : 3); n++) {
    nsqds.push({
      name: `nsqd-${n}`,
      kind: 'nsqd',
      tcpPort: at((n - 1) * 100),
      httpPort: at(1 + (n - 1) * 100),
      dataPath: path.join(dataDir, `nsqd-${n}`),
      nodeId: n,
      replicationPort: ha ? await fixedOrFree(3 + (n - 1) * 100) : null,
      ready: ha ? haAnswers : pingOk,
    });
  }
  for (const node of lookupds) {
    node.args = () => [
      LOOKUPD_BIN,
      `--tcp-address=${HOST}:${node.tcpPort}`,
      `--http-address=${HOST}:${node.httpPort}`,
      `--broadcast-address=${HOST}`,
      '--log-prefix=', // the script prefixes every line with the node's name
    ];
  }
  for (const node of nsqds) {
    const group = ha
      ? [
          `--ha-group=${HA_GROUP}`,
          `--ha-member-id=${node.name}`,
          `--etcd-endpoints=http://${HOST}:${etcd.httpPort}`,
          `--replication-address=${HOST}:${node.replicationPort}`,
          // Every acknowledged publish fsynced on every in-sync member (README "Replication").
          '--sync-every=1',
        ]
      : [];
    node.args = () => [
      NSQD_BIN,
      `--tcp-address=${HOST}:${node.tcpPort}`,
      `--http-address=${HOST}:${node.httpPort}`,
      `--broadcast-address=${HOST}`,
      ...lookupds.map((l) => `--lookupd-tcp-address=${HOST}:${l.tcpPort}`),
      `--data-path=${node.dataPath}`,
      // Distinct message-ID spaces: all three share a hostname, whose hash is the default node id.
      `--node-id=${node.nodeId}`,
      ...group,
      '--log-prefix=',
    ];
  }
  const admin = {
    name: 'nsqadmin',
    kind: 'nsqadmin',
    tcpPort: null, // HTTP only
    httpPort: at(21),
    ready: pingOk,
  };
  admin.args = () => [
    ADMIN_BIN,
    `--http-address=${HOST}:${admin.httpPort}`,
    ...lookupds.map((l) => `--lookupd-http-address=${HOST}:${l.httpPort}`),
    // Lookupds list only the leader: the followers are shown through their own addresses.
    ...(ha ? nsqds.map((n) => `--nsqd-http-address=${HOST}:${n.httpPort}`) : []),
    '--log-prefix=',
  ];
  return { etcd, lookupds, nsqds, admin };
}

/** The daemons' start-up line: `… listening on TCP 127.0.0.1:4150, HTTP 127.0.0.1:4151` (nsqadmin has no TCP part). */
const LISTENING = /listening on (?:TCP (\S+), )?HTTP (\S+)$/;
/** A member's promotion: from then on it listens on this TCP address (a new one each time with port 0). */
const SERVING = /REPLICATION: leading epoch \d+ .*serving on (\S+) after/;

// ---- output ----

const useColour =
  process.env.NO_COLOR === undefined && (process.env.FORCE_COLOR !== undefined || process.stdout.isTTY === true);
const COLOURS = { cyan: 36, magenta: 35, green: 32, yellow: 33, blue: 34, white: 37, red: 31, bold: 1 };
const NODE_COLOURS = ['cyan', 'magenta', 'green', 'yellow', 'blue', 'white', 'cyan'];
const PAD = 'nsqlookupd-1'.length + 2;

function paint(colour, text) {
  return useColour ? `\x1b[${COLOURS[colour]}m${text}\x1b[0m` : text;
}

function out(prefix, colour, line) {
  process.stdout.write(`${paint(colour, `[${prefix}]`.padEnd(PAD))} ${line}\n`);
}

function say(line) {
  out('cluster', 'bold', line);
}

function shout(line) {
  out('cluster', 'red', paint('red', `!!! ${line}`));
}

// ---- processes ----

let phase = 'starting'; // starting → up → stopping
const children = [];

function start(node, colour) {
  const child = spawn(node.command ?? process.execPath, node.args(), {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // own process group: see the header comment
  });
  const entry = { node, child, colour, closed: false, exit: null };
  entry.done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      entry.closed = true;
      entry.exit = signal === null ? `code ${code}` : `signal ${signal}`;
      resolve();
      onChildClosed(entry);
    });
  });
  child.on('error', (err) => shout(`${node.name}: ${err.message}`));
  for (const stream of [child.stdout, child.stderr]) {
    readline.createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) => {
      out(node.name, colour, line);
      const m = node.httpPort === 0 ? LISTENING.exec(line) : null;
      if (m !== null) {
        if (node.tcpPort === 0 && m[1] !== undefined) node.tcpPort = portOf(m[1]);
        node.httpPort = portOf(m[2]);
      }
      const serving = node.replicationPort ? SERVING.exec(line) : null;
      if (serving !== null) node.tcpPort = portOf(serving[1]);
    });
  }
  children.push(entry);
  return entry;
}

function onChildClosed(entry) {
  const what = `${entry.node.name} (pid ${entry.child.pid}) exited with ${entry.exit}`;
  if (phase === 'stopping') {
    out(entry.node.name, entry.colour, `stopped (${entry.exit})`);
    return;
  }
  if (phase === 'starting') {
    shout(`${what} while the cluster was starting; stopping the others`);
    void stopAll(1);
    return;
  }
  shout(`${what} unexpectedly — the other nodes keep running`);
  const alive = children.filter((c) => !c.closed);
  if (alive.length === 0) {
    shout('no node left; exiting');
    process.exit(1);
  }
  say(`still running: ${alive.map((c) => c.node.name).join(', ')}`);
}

function portOf(address) {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

async function get(node, urlPath) {
  return fetch(`http://${HOST}:${node.httpPort}${urlPath}`, { signal: AbortSignal.timeout(1_000) });
}

async function pingOk(node) {
  const res = await get(node, '/ping');
  return res.status === 200 && (await res.text()) === 'OK';
}

/** A group member answers GET /ha whatever its role (a follower's /ping is 503 NOK by design). */
async function haAnswers(node) {
  const res = await get(node, '/ha');
  await res.text();
  return res.status === 200;
}

async function etcdHealthy(node) {
  const res = await get(node, '/health');
  return res.ok && (await res.json()).health === 'true';
}

/**
 * Polls the node's readiness check (GET /ping OK; /ha for a group member; /health for etcd) until
 * it holds, the child exits, or the deadline passes (first waiting for the node's listening line,
 * which tells the port when the OS picked it).
 */
async function waitReady(entry) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (entry.closed || phase !== 'starting') throw new Error(`${entry.node.name} is gone`);
    if (entry.node.httpPort === 0) {
      if (Date.now() >= deadline) throw new Error(`${entry.node.name} did not say where it listens`);
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    if (await entry.node.ready(entry.node).catch(() => false)) return;
    if (Date.now() >= deadline) throw new Error(`${entry.node.name} was not ready within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every member's GET /ha, by name. */
async function groupStatus(nsqds) {
  const out = new Map();
  for (const node of nsqds) out.set(node.name, await (await get(node, '/ha')).json());
  return out;
}

/** Waits until one member leads and every other is connected and in its in-sync set; the leader's status. */
async function waitForGroup(nsqds) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (phase !== 'starting') throw new Error('the group is gone');
    const all = await groupStatus(nsqds).catch(() => new Map());
    const leader = [...all.values()].find((s) => s.role === 'leader');
    if (leader !== undefined && nsqds.every((n) => leader.in_sync.includes(n.name))) {
      const followers = [...all.values()].filter((s) => s !== leader);
      if (followers.every((s) => s.connected === true)) return leader;
    }
    if (Date.now() >= deadline) throw new Error(`no leader with every member in sync within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let stopping = null;
let firstSignalAt = 0;

/**
 * SIGTERM to nsqadmin, then to every live nsqd, then to every lookupd (so the nsqds leave while
 * their lookupds still listen), then etcd; a tier still alive after STOP_TIMEOUT_MS gets SIGKILL. Then exits.
 */
function stopAll(exitCode) {
  if (stopping !== null) return stopping;
  phase = 'stopping';
  stopping = (async () => {
    // etcd last: a member leaving revokes its etcd lease.
    for (const kind of ['nsqadmin', 'nsqd', 'nsqlookupd', 'etcd']) {
      const alive = children.filter((c) => c.node.kind === kind && !c.closed);
      for (const c of alive) c.child.kill('SIGTERM');
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, STOP_TIMEOUT_MS);
      });
      await Promise.race([Promise.all(alive.map((c) => c.done)), timeout]);
      clearTimeout(timer);
      const stuck = alive.filter((c) => !c.closed);
      for (const c of stuck) {
        shout(`${c.node.name} (pid ${c.child.pid}) did not stop within ${STOP_TIMEOUT_MS} ms; SIGKILL`);
        c.child.kill('SIGKILL');
      }
      await Promise.all(stuck.map((c) => c.done));
    }
    say(exitCode === 0 ? 'all nodes stopped' : 'stopped');
    process.exit(exitCode);
  })();
  return stopping;
}

function onSignal(signal) {
  if (stopping !== null) {
    // npm and the terminal may both deliver one Ctrl-C; only a later press forces the issue.
    if (Date.now() - firstSignalAt < 1_000) return;
    shout(`${signal} again; killing every node now`);
    for (const c of children) if (!c.closed) c.child.kill('SIGKILL');
    process.exit(1);
  }
  firstSignalAt = Date.now();
  say(
    `${signal} received; stopping nsqadmin, the nsqds, then the lookupds${children.some((c) => c.node.kind === 'etcd') ? ', then etcd' : ''} (SIGTERM, SIGKILL after ${STOP_TIMEOUT_MS / 1000} s)`,
  );
  void stopAll(0);
}

// Last resort if this script itself crashes: never leave daemons behind.
process.on('exit', () => {
  for (const c of children) if (!c.closed) c.child.kill('SIGKILL');
});
process.on('uncaughtException', (err) => {
  shout(`cluster script failed: ${err.stack ?? err}`);
  void stopAll(1);
});
process.stdout.on('error', () => {}); // a closed pipe (`| head`) must not kill the supervisor

function displayPath(p) {
  const rel = path.relative(process.cwd(), p);
  return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
}

// ---- main ----

const options = parseArgs(process.argv.slice(2));
const { basePort, dataDir, ha } = options;
for (const bin of [NSQD_BIN, LOOKUPD_BIN, ADMIN_BIN]) {
  if (!fs.existsSync(path.join(path.dirname(bin), '../dist/index.js'))) {
    process.stderr.write(`cluster: ${path.relative(ROOT, bin)} is not built; run \`npm run build\` first\n`);
    process.exit(1);
  }
}
if (ha && !fs.existsSync(ETCD_BIN)) {
  process.stderr.write(`cluster: --ha needs etcd at ${ETCD_BIN} (Debian: apt-get install etcd-server)\n`);
  process.exit(1);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

const { etcd, lookupds, nsqds, admin } = await topology(options);
for (const node of nsqds) fs.mkdirSync(node.dataPath, { recursive: true });

const ports = basePort === 0 ? 'ports the OS picks' : `base port ${basePort}`;
const what = ha
  ? `etcd, 2 × nsqlookupd, a replica group of ${nsqds.length} nsqds and nsqadmin`
  : '2 × nsqlookupd, 3 × nsqd and nsqadmin';
say(`starting ${what} on ${HOST} (${ports})`);
let leader = null;
try {
  const first = [...(etcd === null ? [] : [etcd]), ...lookupds];
  let colour = 0;
  await Promise.all(first.map((node) => waitReady(start(node, NODE_COLOURS[colour++]))));
  await Promise.all(nsqds.map((node) => waitReady(start(node, NODE_COLOURS[colour++]))));
  if (ha) {
    leader = await waitForGroup(nsqds);
    say(`${leader.member_id} leads group ${HA_GROUP} at epoch ${leader.epoch}; in sync: ${leader.in_sync.join(', ')}`);
  }
  await waitReady(start(admin, NODE_COLOURS[colour++]));
} catch (err) {
  if (phase === 'starting') {
    shout(`start-up failed: ${err.message}`);
    await stopAll(1);
  }
  await stopping;
}

phase = 'up';
const lookupdHttp = lookupds.map((l) => `${HOST}:${l.httpPort}`);
const adminUrl = `http://${HOST}:${admin.httpPort}/`;
const leaderNode = nsqds.find((n) => n.name === leader?.member_id) ?? nsqds[0];
const rows = [...(etcd === null ? [] : [etcd]), ...lookupds, ...nsqds, admin].map((node) => {
  const entry = children.find((c) => c.node === node);
  // A follower's client listener is closed: only the leader has a TCP address to give.
  const listening = node.tcpPort !== null && (!ha || node.kind !== 'nsqd' || node === leaderNode);
  const tcp = listening ? `${HOST}:${node.tcpPort}` : '-';
  const role = ha && node.kind === 'nsqd' ? `  ${node === leaderNode ? 'leader' : 'follower'}` : '';
  return `  ${node.name.padEnd(13)} pid ${String(entry.child.pid).padEnd(8)} TCP ${tcp.padEnd(HOST.length + 6)}  HTTP http://${HOST}:${node.httpPort}${role}`;
});
const memberHttp = nsqds.map((n) => `--nsqd-http-address=${HOST}:${n.httpPort}`).join(' ');
const groupLines = ha
  ? `  group:        ${HA_GROUP}, etcd http://${HOST}:${etcd.httpPort}, replication ${nsqds.map((n) => `${n.name} ${HOST}:${n.replicationPort}`).join(', ')}\n` +
    `  status:       curl http://${HOST}:${leaderNode.httpPort}/ha   or   nsq ha status ${memberHttp}\n` +
    `  handover:     nsq ha handover ${memberHttp}\n`
  : '';
say('cluster is up');
process.stdout.write(
  `${rows.join('\n')}\n` +
    `  data:         ${displayPath(dataDir)}/{${[...(ha ? ['etcd'] : []), ...nsqds.map((n) => n.name)].join(',')}}\n` +
    groupLines +
    `  nsqadmin:     ${adminUrl}\n` +
    `  consumers:    ${lookupdHttp.map((a) => `--lookupd-http-address=${a}`).join(' ')}\n` +
    `  try:          curl -d hi 'http://${HOST}:${leaderNode.httpPort}/pub?topic=test' && curl 'http://${lookupdHttp[0]}/lookup?topic=test'\n`,
);
say('Ctrl-C stops all nodes');
