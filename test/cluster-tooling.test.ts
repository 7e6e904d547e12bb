/**
 * The cluster tooling (issue 5): docker-compose.yml checked against the real flag parsers of our
 * binaries (no Docker engine exists here to run it), and `scripts/cluster.js` run as a child
 * process — five daemons up and registered, nsqadmin seeing all three nsqds, a killed node
 * reported, a clean stop on SIGINT.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAdminArgs } from '@nsq-ts/admin';
import { Consumer } from '@nsq-ts/client';
import { parseLookupdArgs } from '@nsq-ts/lookupd';
import { eventually } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
// The parser bin/nsqd.js runs (from its build); @nsq-ts/nsqd's index does not export it.
import { parseNsqdArgs } from '../packages/nsqd/src/config/nsqd-flags.js';
import { etcdSupport } from './support/etcd.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLUSTER_SCRIPT = path.join(ROOT, 'scripts/cluster.js');

type Kind = 'nsqd' | 'nsqlookupd' | 'nsqadmin';

/**
 * The port plan shared by docker-compose.yml (base 4150) and scripts/cluster.js (any base):
 * offsets of each node's TCP and HTTP ports from the base port (nsqadmin has no TCP listener).
 */
const PORT_PLAN: Readonly<Record<string, { kind: Kind; tcp: number | null; http: number }>> = {
  'nsqlookupd-1': { kind: 'nsqlookupd', tcp: 10, http: 11 },
  'nsqlookupd-2': { kind: 'nsqlookupd', tcp: 110, http: 111 },
  'nsqd-1': { kind: 'nsqd', tcp: 0, http: 1 },
  'nsqd-2': { kind: 'nsqd', tcp: 100, http: 101 },
  'nsqd-3': { kind: 'nsqd', tcp: 200, http: 201 },
  nsqadmin: { kind: 'nsqadmin', tcp: null, http: 21 },
};
const NODE_NAMES = Object.keys(PORT_PLAN);
const NSQD_NAMES = NODE_NAMES.filter((n) => PORT_PLAN[n].kind === 'nsqd');
const LOOKUPD_NAMES = NODE_NAMES.filter((n) => PORT_PLAN[n].kind === 'nsqlookupd');
const ADMIN = 'nsqadmin';
const COMPOSE_BASE_PORT = 4150;

// ---- docker-compose.yml ----

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: unknown;
  ports?: unknown[];
  volumes?: unknown[];
  healthcheck?: { test?: unknown };
  depends_on?: unknown;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

function loadCompose(file = 'docker-compose.yml'): ComposeFile {
  return parseYaml(readFileSync(path.join(ROOT, file), 'utf8')) as ComposeFile;
}

function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

/** Short syntax `"[IP:]HOST:CONTAINER"` (what this file uses) → host IP, published and container ports. */
function publishedPorts(service: ComposeService): { ip: string; host: number; container: number }[] {
  return (service.ports ?? []).map((entry) => {
    const m = /^(?:([\d.]+):)?(\d+):(\d+)$/.exec(String(entry));
    if (m === null) throw new Error(`unexpected ports entry ${String(entry)}`);
    return { ip: m[1] ?? '0.0.0.0', host: Number(m[2]), container: Number(m[3]) };
  });
}

interface ParsedService {
  name: string;
  bin: string;
  /** null for nsqadmin, which listens on HTTP only. */
  tcpPort: number | null;
  httpPort: number;
  service: ComposeService;
}

/** The real parser of each binary the compose file may run. */
const PARSERS: Readonly<Record<string, (argv: readonly string[]) => unknown>> = {
  nsqd: parseNsqdArgs,
  nsqlookupd: parseLookupdArgs,
  nsqadmin: parseAdminArgs,
};

function commandOf(name: string, service: ComposeService): [string, string[]] {
  const command = service.command;
  if (!Array.isArray(command) || !command.every((a) => typeof a === 'string')) {
    throw new Error(`${name}: command must be a list of strings`);
  }
  const [bin, ...args] = command as string[];
  return [bin, args];
}

/** Runs every service's command through the parser of the binary it names. */
function parseServices(compose: ComposeFile): ParsedService[] {
  return Object.entries(compose.services).map(([name, service]) => {
    const [bin, args] = commandOf(name, service);
    if (bin === 'nsqadmin') {
      const parsed = parseAdminArgs(args);
      if (parsed.kind !== 'run') throw new Error(`${name}: ${parsed.kind} instead of running`);
      expect(parsed.warnings, name).toEqual([]);
      const http = splitHostPort(parsed.options.httpAddress);
      expect(http.host, `${name} listens on all interfaces`).toBe('0.0.0.0');
      return { name, bin, tcpPort: null, httpPort: http.port, service };
    }
    const parsed = bin === 'nsqd' ? parseNsqdArgs(args) : bin === 'nsqlookupd' ? parseLookupdArgs(args) : null;
    if (parsed === null) throw new Error(`${name}: unknown binary ${bin}`);
    if (parsed.kind !== 'run') throw new Error(`${name}: ${parsed.kind} instead of running`);
    expect(parsed.warnings, name).toEqual([]);
    const { options } = parsed;
    expect(options.broadcastAddress, `${name} --broadcast-address`).toBe(name);
    const tcp = splitHostPort(options.tcpAddress);
    const http = splitHostPort(options.httpAddress);
    expect([tcp.host, http.host], `${name} listens on all interfaces`).toEqual(['0.0.0.0', '0.0.0.0']);
    return { name, bin, tcpPort: tcp.port, httpPort: http.port, service };
  });
}

/** The plan's ports of a node from a base port: [TCP, HTTP], or [HTTP] for nsqadmin. */
function plannedPorts(name: string, base: number): number[] {
  const { tcp, http } = PORT_PLAN[name];
  return tcp === null ? [base + http] : [base + tcp, base + http];
}

describe('docker-compose.yml', () => {
  it('has 2 × nsqlookupd, 3 × nsqd and nsqadmin, and nothing else', () => {
    const compose = loadCompose();
    expect(Object.keys(compose.services).sort()).toEqual([...NODE_NAMES].sort());
    for (const { name, bin } of parseServices(compose)) expect(bin, name).toBe(PORT_PLAN[name].kind);
  });

  it('every command parses with the real flag tables of nsqd, nsqlookupd and nsqadmin', () => {
    const compose = loadCompose();
    for (const [name, service] of Object.entries(compose.services)) {
      const [bin, args] = commandOf(name, service);
      const parse = PARSERS[bin];
      expect(parse, `${name}: a parser for ${bin}`).toBeDefined();
      expect(() => parse(args), name).not.toThrow();
    }
    // The parsers are strict: a misspelt flag would have thrown.
    expect(() => parseNsqdArgs(['--lookupd-tcp-addresses=x:4160'])).toThrow();
    expect(() => parseLookupdArgs(['--tcp-adress=0.0.0.0:4160'])).toThrow();
    expect(() => parseAdminArgs(['--lookupd-http-adress=x:4161'])).toThrow();
    expect(() => parseAdminArgs([])).toThrow(/lookupd-http-address/); // nsqadmin needs a source
  });

  it('follows the port plan of npm run cluster and publishes exactly the ports each daemon listens on', () => {
    const services = parseServices(loadCompose());
    const hostPorts: number[] = [];
    for (const { name, tcpPort, httpPort, service } of services) {
      const listening = tcpPort === null ? [httpPort] : [tcpPort, httpPort];
      expect(listening, name).toEqual(plannedPorts(name, COMPOSE_BASE_PORT));
      const ports = publishedPorts(service);
      expect(ports.map((p) => p.container).sort(), `${name} ports`).toEqual([...listening].sort());
      // Published = announced, so a host that maps the service names to 127.0.0.1 can use lookupd;
      // and only on the host's loopback, since the daemons take any unauthenticated request.
      for (const p of ports) expect(p.host, name).toBe(p.container);
      for (const p of ports) expect(p.ip, `${name} publishes ${p.host} on`).toBe('127.0.0.1');
      hostPorts.push(...ports.map((p) => p.host));
    }
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
    // nsqadmin keeps NSQ's own port.
    expect(services.find((s) => s.name === ADMIN)?.httpPort).toBe(4171);
  });

  it('points every nsqd at both lookupds and gives it its own data volume and node id', () => {
    const compose = loadCompose();
    const services = parseServices(compose);
    const lookupdTcp = services.filter((s) => s.bin === 'nsqlookupd').map((s) => `${s.name}:${s.tcpPort}`);
    expect(lookupdTcp.sort()).toEqual(LOOKUPD_NAMES.map((n) => `${n}:${plannedPorts(n, COMPOSE_BASE_PORT)[0]}`));

    const volumes = new Set<string>();
    const nodeIds = new Set<number>();
    for (const { name, service } of services.filter((s) => s.bin === 'nsqd')) {
      const parsed = parseNsqdArgs((service.command as string[]).slice(1));
      if (parsed.kind !== 'run') throw new Error(name);
      const { options } = parsed;
      expect([...options.lookupdTcpAddresses].sort(), `${name} --lookupd-tcp-address`).toEqual(lookupdTcp);
      nodeIds.add(options.nodeId);

      const mounts = (service.volumes ?? []).map((v) => String(v).split(':'));
      const data = mounts.find(([, target]) => target === options.dataPath);
      expect(data, `${name}: a volume mounted at --data-path=${options.dataPath}`).toBeDefined();
      const volume = (data as string[])[0];
      expect(Object.keys(compose.volumes ?? {}), `${name}: ${volume} is a named volume`).toContain(volume);
      volumes.add(volume);

      expect(Object.keys(service.depends_on as object).sort(), name).toEqual(LOOKUPD_NAMES);
    }
    expect(volumes.size).toBe(NSQD_NAMES.length);
    expect(nodeIds.size).toBe(NSQD_NAMES.length);
  });

  it('points nsqadmin at both lookupds over HTTP and starts it once they are healthy', () => {
    const compose = loadCompose();
    const services = parseServices(compose);
    const lookupdHttp = services.filter((s) => s.bin === 'nsqlookupd').map((s) => `${s.name}:${s.httpPort}`);
    expect(lookupdHttp.sort()).toEqual(LOOKUPD_NAMES.map((n) => `${n}:${COMPOSE_BASE_PORT + PORT_PLAN[n].http}`));

    const admin = compose.services[ADMIN];
    expect((admin.command as string[])[0]).toBe('nsqadmin');
    const parsed = parseAdminArgs(commandOf(ADMIN, admin)[1]);
    if (parsed.kind !== 'run') throw new Error(parsed.kind);
    expect([...parsed.options.lookupdHttpAddresses].sort(), '--lookupd-http-address').toEqual(lookupdHttp);
    expect(parsed.options.nsqdHttpAddresses, 'nodes come from the lookupds').toEqual([]);
    expect(parsed.options.httpAddress).toBe('0.0.0.0:4171');
    expect(parsed.options.basePath, 'served at the root, where the healthcheck asks').toBe('/');
    expect(admin.depends_on).toEqual(
      Object.fromEntries(LOOKUPD_NAMES.map((n) => [n, { condition: 'service_healthy' }])),
    );
  });

  it('health-checks every service through its own /ping, with node (the image has no curl)', () => {
    for (const { name, httpPort, service } of parseServices(loadCompose())) {
      const test = service.healthcheck?.test;
      expect(Array.isArray(test), name).toBe(true);
      expect((test as string[]).slice(0, 3), name).toEqual(['CMD', 'node', '-e']);
      expect((test as string[])[3], name).toContain(`http://127.0.0.1:${httpPort}/ping`);
    }
  });

  it('runs binaries the Dockerfile puts on the PATH, from one image the Dockerfile builds', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    const compose = loadCompose();
    // nsqadmin reads its UI from packages/admin/static/ at start-up: the image must carry it.
    expect(dockerfile).toMatch(/for sub in [^;]*\bstatic\b[^;]*; do/);
    expect(existsSync(path.join(ROOT, 'packages/admin/static/index.html'))).toBe(true);
    const dockerignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8');
    expect(dockerignore).not.toMatch(/^\S*static\S*$/m);
    for (const [name, service] of Object.entries(compose.services)) {
      const bin = (service.command as string[])[0];
      const link = new RegExp(`ln -s /app/(\\S+) /usr/local/bin/${bin}\\b`).exec(dockerfile);
      expect(link, `${name}: Dockerfile links ${bin}`).not.toBeNull();
      expect(existsSync(path.join(ROOT, (link as RegExpExecArray)[1])), `${name}: ${bin} target`).toBe(true);
      expect(service.image, name).toBe(compose.services['nsqd-1'].image);
      expect(service.build, name).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    }
    // The CLI too, for `docker compose exec nsqd-1 nsq …`.
    const cli = /ln -s \/app\/(\S+) \/usr\/local\/bin\/nsq\b(?!\w)/.exec(dockerfile);
    expect(cli, 'Dockerfile links nsq').not.toBeNull();
    expect((cli as RegExpExecArray)[1]).toBe('packages/cli/bin/nsq.js');
    expect(dockerfile).toContain('packages/cli/bin/nsq.js \\');
    const expose = /^EXPOSE (.+)$/m.exec(dockerfile);
    expect(expose?.[1].split(/\s+/).map(Number)).toEqual([4150, 4151, 4152, 4160, 4161, 4171]);
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim|^ARG NODE_IMAGE=node:20-bookworm-slim$/m);
  });
});

describe('docker-compose.ha.yml', () => {
  const HA_FILE = 'docker-compose.ha.yml';
  /** The nsq-ts services (etcd runs etcd's own image, checked apart). */
  const nsqServices = (compose: ComposeFile) => {
    const { etcd: _etcd, ...rest } = compose.services;
    return parseServices({ services: rest });
  };
  const nsqdOptions = (service: ComposeService) => {
    const parsed = parseNsqdArgs((service.command as string[]).slice(1));
    if (parsed.kind !== 'run') throw new Error(parsed.kind);
    return parsed.options;
  };

  it('is docker-compose.yml plus etcd: the same nodes on the same ports, published on 127.0.0.1 only', () => {
    const compose = loadCompose(HA_FILE);
    expect(Object.keys(compose.services).sort()).toEqual(['etcd', ...NODE_NAMES].sort());
    for (const { name, bin, tcpPort, httpPort, service } of nsqServices(compose)) {
      expect(bin, name).toBe(PORT_PLAN[name].kind);
      const listening = tcpPort === null ? [httpPort] : [tcpPort, httpPort];
      expect(listening, name).toEqual(plannedPorts(name, COMPOSE_BASE_PORT));
      const ports = publishedPorts(service);
      expect(ports.map((p) => p.container).sort(), `${name} ports`).toEqual([...listening].sort());
      for (const p of ports) expect([p.ip, p.host], name).toEqual(['127.0.0.1', p.container]);
      expect(service.build, name).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    }
    const etcd = compose.services.etcd;
    expect(etcd.image).toMatch(/^quay\.io\/coreos\/etcd:v3\.5\.\d+$/);
    expect(publishedPorts(etcd)).toEqual([{ ip: '127.0.0.1', host: 4179, container: 4179 }]);
  });

  it('runs etcd on its own volume, advertising the address the members are given, health-checked by etcdctl', () => {
    const compose = loadCompose(HA_FILE);
    const etcd = compose.services.etcd;
    const [bin, ...args] = etcd.command as string[];
    expect(bin).toBe('etcd');
    const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    expect(flag('listen-client-urls')).toBe('http://0.0.0.0:4179');
    expect(flag('advertise-client-urls')).toBe('http://etcd:4179');
    expect(flag('initial-cluster')).toBe(`${flag('name')}=${flag('initial-advertise-peer-urls')}`);
    const [volume, target] = String(etcd.volumes?.[0]).split(':');
    expect(target).toBe(flag('data-dir'));
    expect(Object.keys(compose.volumes ?? {})).toContain(volume);
    expect(etcd.healthcheck?.test).toEqual([
      'CMD',
      'etcdctl',
      '--endpoints=http://127.0.0.1:4179',
      'endpoint',
      'health',
    ]);
    for (const name of NSQD_NAMES) {
      expect(nsqdOptions(compose.services[name]).etcdEndpoints, name).toEqual([flag('advertise-client-urls')]);
    }
  });

  it('makes the three nsqds one group: own member ids, replication addresses named after the service, the same settings', () => {
    const compose = loadCompose(HA_FILE);
    const members = NSQD_NAMES.map((name) => ({ name, options: nsqdOptions(compose.services[name]) }));
    const replication = new Set<string>();
    const volumes = new Set<string>();
    for (const { name, options } of members) {
      expect(options.haGroup, name).toBe('cluster');
      expect(options.haMemberId, name).toBe(name);
      expect(options.syncEvery, `${name} --sync-every`).toBe(1);
      // Announced in etcd and dialled by the other members: it must name this container.
      const { host, port } = splitHostPort(options.replicationAddress);
      expect(host, name).toBe(name);
      expect(port, name).toBe(COMPOSE_BASE_PORT + Number(PORT_PLAN[name].tcp) + 3);
      replication.add(options.replicationAddress);
      // Checked at every stream's hello: a member that differs is refused.
      expect([options.maxBytesPerFile, options.maxMsgSize], name).toEqual([
        members[0].options.maxBytesPerFile,
        members[0].options.maxMsgSize,
      ]);
      const service = compose.services[name];
      volumes.add(String(service.volumes?.[0]).split(':')[0]);
      expect(service.depends_on, name).toEqual(
        Object.fromEntries(['etcd', ...LOOKUPD_NAMES].map((n) => [n, { condition: 'service_healthy' }])),
      );
      // A follower's /ping is 503 by design: the healthcheck asks GET /ha.
      const test = service.healthcheck?.test as string[];
      expect(test.slice(0, 3), name).toEqual(['CMD', 'node', '-e']);
      expect(test[3], name).toContain(`http://127.0.0.1:${COMPOSE_BASE_PORT + PORT_PLAN[name].http}/ha'`);
    }
    expect(replication.size).toBe(NSQD_NAMES.length);
    expect(volumes.size).toBe(NSQD_NAMES.length);
  });

  it("gives nsqadmin every member's HTTP address besides the lookupds (they list only the leader)", () => {
    const compose = loadCompose(HA_FILE);
    const parsed = parseAdminArgs(commandOf(ADMIN, compose.services[ADMIN])[1]);
    if (parsed.kind !== 'run') throw new Error(parsed.kind);
    expect([...parsed.options.nsqdHttpAddresses].sort()).toEqual(
      NSQD_NAMES.map((n) => `${n}:${COMPOSE_BASE_PORT + PORT_PLAN[n].http}`),
    );
    expect([...parsed.options.lookupdHttpAddresses].sort()).toEqual(
      LOOKUPD_NAMES.map((n) => `${n}:${COMPOSE_BASE_PORT + PORT_PLAN[n].http}`),
    );
  });
});

// ---- scripts/cluster.js ----

async function ping(port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(1_000) });
    return res.status === 200 && (await res.text()) === 'OK';
  } catch {
    return false;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface NodesResponse {
  producers: { broadcast_address: string; tcp_port: number; http_port: number }[];
}

interface AdminNodesResponse {
  nodes: { broadcastAddress: string; tcpPort: number; httpPort: number; reachable: boolean }[];
  errors: unknown[];
}

/** A process's command line (Linux's /proc), without the node executable; null elsewhere. */
function commandLine(pid: number): string[] | null {
  const file = `/proc/${pid}/cmdline`;
  if (!existsSync(file)) return null;
  return readFileSync(file, 'utf8')
    .split('\0')
    .filter((a) => a !== '')
    .slice(1);
}

describe('scripts/cluster.js', () => {
  let script: ChildProcess | null = null;
  let pids: number[] = [];
  let dataDir: string | null = null;

  afterEach(() => {
    if (script !== null && script.exitCode === null && script.signalCode === null) script.kill('SIGKILL');
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
    script = null;
    pids = [];
    dataDir = null;
  });

  /** scripts/cluster.js on ports the OS picks, in `dataDir`, once it printed its summary; `output` grows. */
  async function runCluster(extra: string[], timeoutMs: number) {
    const child = spawn(process.execPath, [CLUSTER_SCRIPT, ...extra, '--base-port=0', `--data-dir=${dataDir}`], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    });
    script = child;
    const run = {
      child,
      output: '',
      exited: new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.on('exit', (code, signal) => resolve({ code, signal }));
      }),
    };
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (d) => {
        run.output += d;
      });
    }
    // The summary names every node's pid and the ports the OS gave it.
    await eventually(() => run.output.includes('Ctrl-C stops all nodes'), { timeoutMs, intervalMs: 50 }).catch(
      (err) => {
        throw new Error(`cluster did not come up: ${err}\n${run.output}`);
      },
    );
    return run;
  }

  it('refuses a bad base port with status 2', async () => {
    const child = spawn(process.execPath, [CLUSTER_SCRIPT, '--base-port=65500'], { stdio: 'pipe' });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('base port');
    const members = spawn(process.execPath, [CLUSTER_SCRIPT, '--ha', '--ha-members=4'], { stdio: 'pipe' });
    let membersErr = '';
    members.stderr.on('data', (d) => {
      membersErr += d;
    });
    expect(await new Promise((resolve) => members.on('exit', resolve))).toBe(2);
    expect(membersErr).toContain('--ha-members must be 2 or 3, not 4');
  });

  it('starts 2 lookupds, 3 registered nsqds and nsqadmin, survives a dead node, and stops cleanly on SIGINT', async () => {
    dataDir = mkdtempSync(path.join(os.tmpdir(), 'nsq-cluster-'));
    // --base-port=0: every node on a port the OS hands out (no guess at which ports are free).
    const run = await runCluster([], 30_000);
    const { child, exited } = run;
    const tcpPorts: Record<string, number> = {};
    const httpPorts: Record<string, number> = {};
    for (const name of NODE_NAMES) {
      const m = new RegExp(
        `^\\s+${name}\\s+pid (\\d+)\\s+TCP (?:127\\.0\\.0\\.1:(\\d+)|-)\\s+HTTP http://127\\.0\\.0\\.1:(\\d+)$`,
        'm',
      ).exec(run.output);
      expect(m, `${name} in the summary`).not.toBeNull();
      const [, pid, tcp, http] = m as RegExpExecArray;
      pids.push(Number(pid));
      if (tcp !== undefined) tcpPorts[name] = Number(tcp);
      httpPorts[name] = Number(http);
    }
    expect(new Set(Object.values(httpPorts)).size).toBe(NODE_NAMES.length);
    for (const name of NODE_NAMES) {
      expect(await ping(httpPorts[name]), `${name} /ping`).toBe(true);
    }
    for (const name of NSQD_NAMES) expect(existsSync(path.join(dataDir, name)), `${name} data dir`).toBe(true);

    // Every nsqd is registered in both lookupds, under the address and ports it announced.
    const expected = NSQD_NAMES.map((n) => `127.0.0.1:${tcpPorts[n]}:${httpPorts[n]}`).sort();
    for (const lookupd of LOOKUPD_NAMES) {
      await eventually(
        async () => {
          const res = await fetch(`http://127.0.0.1:${httpPorts[lookupd]}/nodes`);
          const body = (await res.json()) as NodesResponse;
          const got = body.producers.map((p) => `${p.broadcast_address}:${p.tcp_port}:${p.http_port}`).sort();
          expect(got, `${lookupd} /nodes`).toEqual(expected);
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
    }

    // nsqadmin: with both lookupds' HTTP addresses, its URL printed, and it sees the three nsqds
    // through them.
    const adminPort = httpPorts[ADMIN];
    expect(run.output).toContain(`nsqadmin:     http://127.0.0.1:${adminPort}/`);
    const adminArgs = commandLine(pids[NODE_NAMES.indexOf(ADMIN)]);
    if (adminArgs !== null) {
      expect(adminArgs[0]).toBe(path.join(ROOT, 'packages/admin/bin/nsqadmin.js'));
      const parsed = parseAdminArgs(adminArgs.slice(1));
      if (parsed.kind !== 'run') throw new Error(parsed.kind);
      expect(parsed.options.httpAddress).toBe('127.0.0.1:0');
      expect([...parsed.options.lookupdHttpAddresses].sort()).toEqual(
        LOOKUPD_NAMES.map((n) => `127.0.0.1:${httpPorts[n]}`).sort(),
      );
    }
    const index = await fetch(`http://127.0.0.1:${adminPort}/`);
    expect(index.status, 'nsqadmin UI').toBe(200);
    expect(await index.text()).toContain('<html');
    await eventually(
      async () => {
        const res = await fetch(`http://127.0.0.1:${adminPort}/api/nodes`);
        expect(res.status).toBe(200);
        const body = (await res.json()) as AdminNodesResponse;
        expect(body.errors, 'nsqadmin /api/nodes errors').toEqual([]);
        const got = body.nodes.map((n) => `${n.broadcastAddress}:${n.tcpPort}:${n.httpPort}`).sort();
        expect(got, 'nsqadmin /api/nodes').toEqual(expected);
        expect(body.nodes.every((n) => n.reachable)).toBe(true);
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );

    // A node that dies is reported; the script and the other nodes keep running.
    const victim = pids[NODE_NAMES.indexOf('nsqd-2')];
    process.kill(victim, 'SIGKILL');
    await eventually(() => /nsqd-2 \(pid \d+\) exited with signal SIGKILL unexpectedly/.test(run.output), {
      timeoutMs: 5_000,
    });
    expect(child.exitCode).toBeNull();
    for (const name of NODE_NAMES.filter((n) => n !== 'nsqd-2')) {
      expect(await ping(httpPorts[name]), `${name} still answers`).toBe(true);
    }

    // Ctrl-C: everything stops with SIGTERM well inside the script's own SIGKILL deadline.
    const stopStarted = Date.now();
    child.kill('SIGINT');
    const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 15_000).unref());
    const result = await Promise.race([exited, deadline]);
    expect(result, run.output).toEqual({ code: 0, signal: null });
    expect(Date.now() - stopStarted).toBeLessThan(10_000);
    expect(run.output).toContain('all nodes stopped');
    expect(run.output).not.toContain('did not stop within'); // the script never had to force a node down
    for (const name of NODE_NAMES.filter((n) => n !== 'nsqd-2')) {
      expect(run.output, name).toMatch(new RegExp(`\\[${name}\\]\\s+stopped \\(code 0\\)`));
    }
    // nsqadmin goes first: it only reads the others.
    const stoppedAt = (name: string) => run.output.search(new RegExp(`\\[${name}\\]\\s+stopped`));
    expect(stoppedAt(ADMIN)).toBeLessThan(stoppedAt('nsqd-1'));
    // No process left behind, no port still bound.
    await eventually(() => pids.every((pid) => !isAlive(pid)), { timeoutMs: 2_000 });
    for (const name of NODE_NAMES) expect(await ping(httpPorts[name]), name).toBe(false);
  }, 60_000);

  it.skipIf(etcdSupport() !== null)(
    '--ha: etcd and a group of 3 nsqds come up, one leads with the others in sync, a publish through it is consumed, SIGINT stops all, etcd last',
    async () => {
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'nsq-cluster-ha-'));
      const run = await runCluster(['--ha'], 60_000);
      const { child, exited } = run;
      const httpPorts: Record<string, number> = {};
      const roles: Record<string, string> = {};
      for (const name of ['etcd', ...NODE_NAMES]) {
        const m = new RegExp(
          `^\\s+${name}\\s+pid (\\d+)\\s+TCP (?:127\\.0\\.0\\.1:\\d+|-)\\s+HTTP http://127\\.0\\.0\\.1:(\\d+)(?:\\s+(leader|follower))?$`,
          'm',
        ).exec(run.output);
        expect(m, `${name} in the summary\n${run.output}`).not.toBeNull();
        const [, pid, http, role] = m as RegExpExecArray;
        pids.push(Number(pid));
        httpPorts[name] = Number(http);
        if (role !== undefined) roles[name] = role;
      }
      const leaders = NSQD_NAMES.filter((n) => roles[n] === 'leader');
      expect(leaders).toHaveLength(1);
      const leader = leaders[0];
      expect(run.output).toMatch(new RegExp(`${leader} leads group cluster at epoch \\d+; in sync: `));
      for (const name of [...NSQD_NAMES, 'etcd']) {
        expect(existsSync(path.join(dataDir, name)), `${name} data dir`).toBe(true);
      }

      // Every member's GET /ha agrees: one leader, every member in sync; only the leader answers /ping OK.
      for (const name of NSQD_NAMES) {
        const ha = (await (await fetch(`http://127.0.0.1:${httpPorts[name]}/ha`)).json()) as {
          role: string;
          leader: string;
          in_sync: string[];
        };
        expect([ha.role, ha.leader], name).toEqual([name === leader ? 'leader' : 'follower', leader]);
        expect([...ha.in_sync].sort(), name).toEqual(NSQD_NAMES);
        expect(await ping(httpPorts[name]), `${name} /ping`).toBe(name === leader);
      }
      // The lookupds list the leader alone; nsqadmin shows every member with its role.
      for (const lookupd of LOOKUPD_NAMES) {
        await eventually(
          async () => {
            const body = (await (await fetch(`http://127.0.0.1:${httpPorts[lookupd]}/nodes`)).json()) as NodesResponse;
            expect(body.producers.map((p) => p.http_port)).toEqual([httpPorts[leader]]);
          },
          { timeoutMs: 10_000, intervalMs: 50 },
        );
      }
      await eventually(
        async () => {
          const res = await fetch(`http://127.0.0.1:${httpPorts[ADMIN]}/api/nodes`);
          const body = (await res.json()) as { nodes: { httpPort: number; ha: { role: string } | null }[] };
          const got = body.nodes.map((n) => `${n.httpPort}:${n.ha?.role}`).sort();
          expect(got).toEqual(NSQD_NAMES.map((n) => `${httpPorts[n]}:${n === leader ? 'leader' : 'follower'}`).sort());
        },
        { timeoutMs: 10_000, intervalMs: 100 },
      );

      // A publish through the leader (sync acks: every member stored it) reaches a consumer that finds it through lookupd.
      const pub = await fetch(`http://127.0.0.1:${httpPorts[leader]}/pub?topic=ha-test`, {
        method: 'POST',
        body: 'hello group',
      });
      expect([pub.status, await pub.text()]).toEqual([200, 'OK']);
      const got: string[] = [];
      const consumer = new Consumer({
        topic: 'ha-test',
        channel: 'c',
        lookupdHttpAddresses: LOOKUPD_NAMES.map((n) => `127.0.0.1:${httpPorts[n]}`),
        lookupdPollIntervalMs: 200,
        logger: null,
      });
      consumer.on('message', async (msg) => {
        got.push(msg.body.toString());
      });
      try {
        await consumer.connect();
        await eventually(() => got.length > 0, { timeoutMs: 15_000 });
      } finally {
        await consumer.close();
      }
      expect(got).toEqual(['hello group']);

      child.kill('SIGINT');
      const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30_000).unref());
      expect(await Promise.race([exited, deadline]), run.output).toEqual({ code: 0, signal: null });
      expect(run.output).toContain('all nodes stopped');
      expect(run.output).not.toContain('did not stop within');
      const stoppedAt = (name: string) => run.output.search(new RegExp(`\\[${name}\\]\\s+stopped`));
      for (const name of [...NSQD_NAMES, ...LOOKUPD_NAMES]) {
        expect(run.output, name).toMatch(new RegExp(`\\[${name}\\]\\s+stopped \\(code 0\\)`));
        expect(stoppedAt(name), `${name} stops before etcd`).toBeLessThan(stoppedAt('etcd'));
      }
      await eventually(() => pids.every((pid) => !isAlive(pid)), { timeoutMs: 2_000 });
    },
    120_000,
  );
});
