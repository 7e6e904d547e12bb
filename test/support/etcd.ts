/**
 * A real single-member etcd for tests: a temporary data directory, its own ports, started and
 * waited for until `/health` says so, stopped and removed afterwards.
 *
 * - On loopback (the default) the client and peer ports are picked free by binding port 0 and
 *   releasing it; a start that loses such a port to another process is retried with new ones.
 * - Inside a network namespace (test/support/netns.ts) pass `host` (the namespace's address),
 *   fixed ports (nothing else lives there), `spawn` (to run it there) and `healthy` (a probe run
 *   from inside, since the test process cannot reach the namespace).
 * - Raft timers are shortened (heartbeat 100 ms, election 500 ms) so leases of 1 s are allowed:
 *   etcd raises any TTL below 1.5 × election timeout, i.e. 2 s with its defaults.
 */
import { type ChildProcess, spawn as spawnProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitUntil } from './processes.js';

export const ETCD_BIN = '/usr/bin/etcd';
const START_DEADLINE_MS = 20_000;
const STOP_DEADLINE_MS = 10_000;
const LOG_LINES_KEPT = 200;

/** Null when etcd can run here, else why the tests that need it are skipped. */
export function etcdSupport(): string | null {
  try {
    accessSync(ETCD_BIN, constants.X_OK);
    return null;
  } catch {
    return `${ETCD_BIN} is not installed (apt-get install etcd-server)`;
  }
}

export interface StartEtcdOptions {
  /** Address to listen on and advertise. Default 127.0.0.1. */
  readonly host?: string;
  /** Fixed ports (e.g. 2379/2380 inside a namespace of its own); default: free loopback ports. */
  readonly clientPort?: number;
  readonly peerPort?: number;
  /** Starts the process (default: a plain child process). */
  readonly spawn?: (command: string, args: readonly string[]) => ChildProcess;
  /** Whether `<clientUrl>/health` reports healthy (default: fetched from this process). */
  readonly healthy?: (clientUrl: string) => Promise<boolean>;
}

async function freePort(host: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function fetchHealthy(clientUrl: string): Promise<boolean> {
  const res = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(2_000) });
  return res.ok && ((await res.json()) as { health?: string }).health === 'true';
}

/** One running etcd. */
export class EtcdServer {
  readonly exited: Promise<void>;
  private running = true;
  private readonly lines: string[] = [];

  constructor(
    readonly clientUrl: string,
    private readonly child: ChildProcess,
    private readonly dataDir: string,
  ) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.running = false;
        this.keep(`<exited code=${code} signal=${signal}>`);
        resolve();
      });
    });
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') this.keep(line);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.running;
  }

  /** Sends a signal to etcd itself (e.g. SIGSTOP/SIGCONT to freeze every request). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  logs(): string {
    return this.lines.map((line) => `etcd | ${line}`).join('\n');
  }

  /** SIGTERM (SIGKILL after a deadline), then the data directory is removed. Idempotent. */
  async stop(): Promise<void> {
    if (this.running) {
      this.child.kill('SIGCONT');
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_DEADLINE_MS);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }

  private keep(line: string): void {
    this.lines.push(line);
    if (this.lines.length > LOG_LINES_KEPT) this.lines.splice(0, this.lines.length - LOG_LINES_KEPT);
  }
}

/** Starts etcd and resolves once it is healthy. */
export async function startEtcd(options: StartEtcdOptions = {}): Promise<EtcdServer> {
  const fixedPorts = options.clientPort !== undefined && options.peerPort !== undefined;
  const attempts = fixedPorts ? 1 : 3;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    try {
      return await startOnce(options);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startOnce(options: StartEtcdOptions): Promise<EtcdServer> {
  const host = options.host ?? '127.0.0.1';
  const clientPort = options.clientPort ?? (await freePort(host));
  const peerPort = options.peerPort ?? (await freePort(host));
  const clientUrl = `http://${host}:${clientPort}`;
  const peerUrl = `http://${host}:${peerPort}`;
  const dataDir = await mkdtemp(join(tmpdir(), 'nsq-ts-etcd-'));
  const args = [
    '--name=test',
    `--data-dir=${join(dataDir, 'data')}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=test=${peerUrl}`,
    '--heartbeat-interval=100',
    '--election-timeout=500',
    '--logger=zap',
    '--log-outputs=stderr',
  ];
  const child = options.spawn
    ? options.spawn(ETCD_BIN, args)
    : spawnProcess(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = new EtcdServer(clientUrl, child, dataDir);
  const healthy = options.healthy ?? fetchHealthy;
  try {
    // An exit (e.g. a port taken meanwhile) ends the wait at once, with etcd's output.
    const exited = server.exited.then(() => {
      throw new Error(`etcd exited before it was healthy:\n${server.logs()}`);
    });
    exited.catch(() => undefined);
    await Promise.race([
      exited,
      waitUntil(`etcd healthy at ${clientUrl}`, () => server.alive && healthy(clientUrl), {
        timeoutMs: START_DEADLINE_MS,
        intervalMs: 100,
      }),
    ]);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** What starting etcd inside a lab's namespace needs of test/support/netns.ts's NetnsLab. */
export interface EtcdLab {
  address(member: string): string;
  spawn(member: string, command: string, args: readonly string[]): ChildProcess;
  exec(member: string, command: string, args: readonly string[], timeoutMs?: number): Promise<unknown>;
}

/** etcd in `member`'s namespace of a lab, on its lab address; health is asked from inside (this process cannot reach it). */
export function startEtcdInLab(lab: EtcdLab, member: string): Promise<EtcdServer> {
  return startEtcd({
    host: lab.address(member),
    clientPort: 2379,
    peerPort: 2380,
    spawn: (command, args) => lab.spawn(member, command, args),
    healthy: async (url) => {
      const script = `fetch('${url}/health').then((r) => r.json()).then((j) => process.exit(j.health === 'true' ? 0 : 1), () => process.exit(1));`;
      return lab.exec(member, process.execPath, ['-e', script], 5_000).then(
        () => true,
        () => false,
      );
    },
  });
}
