/**
 * Real nsqd / nsqlookupd child processes for cluster and failure tests.
 *
 * - Ports: a first start binds 127.0.0.1:0 itself and the real ports are read from the
 *   "listening on TCP h:p, HTTP h:p" line the binaries print, so there is no window in which
 *   another process can take a port we picked; a restart reuses the same ports.
 * - Readiness: that line, then `GET /ping` answering `OK`, both under a deadline.
 * - Output (stdout and stderr) is kept, the last lines of each process, for failure messages.
 * - Every process started through a {@link ProcessGroup} is SIGKILLed and reaped by
 *   `group.killAll()` (call it from afterEach), whatever state the test left it in.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BINARIES = {
  nsqd: join(ROOT, 'packages/nsqd/bin/nsqd.js'),
  nsqlookupd: join(ROOT, 'packages/lookupd/bin/nsqlookupd.js'),
} as const;

export type DaemonKind = keyof typeof BINARIES;

const START_DEADLINE_MS = 20_000;
const STOP_DEADLINE_MS = 10_000;
const LOG_LINES_KEPT = 400;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Both daemons listen on ports the kernel picks on 127.0.0.1, and announce 127.0.0.1. */
const LOOPBACK_LISTENERS = [
  '--tcp-address',
  '127.0.0.1:0',
  '--http-address',
  '127.0.0.1:0',
  '--broadcast-address',
  '127.0.0.1',
] as const;

export function portOf(address: string): number {
  return Number(address.slice(address.lastIndexOf(':') + 1));
}

/** Polls `check` until it returns a value other than false/undefined or stops throwing. */
export async function waitUntil<T>(
  what: string,
  check: () => T | false | undefined | Promise<T | false | undefined>,
  { timeoutMs = 10_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== false && value !== undefined) return value;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** One running (or exited) daemon process. */
export class DaemonProcess {
  readonly exited: Promise<Exit>;
  private exit: Exit | null = null;
  private readonly lines: string[] = [];
  private partial = '';
  tcpAddress = '';
  httpAddress = '';

  constructor(
    readonly name: string,
    readonly kind: DaemonKind,
    readonly args: readonly string[],
    private readonly child: ChildProcess,
  ) {
    this.exited = new Promise<Exit>((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        if (this.partial !== '') this.keep(this.partial);
        this.keep(`<exited code=${code} signal=${signal}>`);
        resolve(this.exit);
      });
    });
    const onData = (chunk: Buffer) => {
      const text = this.partial + chunk.toString('utf8');
      const parts = text.split('\n');
      this.partial = parts.pop() ?? '';
      for (const line of parts) this.keep(line);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exit === null;
  }

  get tcpPort(): number {
    return portOf(this.tcpAddress);
  }

  get httpPort(): number {
    return portOf(this.httpAddress);
  }

  /** The last lines this process printed, prefixed with its name. */
  logs(): string {
    const tail = this.partial === '' ? this.lines : [...this.lines, this.partial];
    return tail.map((line) => `${this.name} | ${line}`).join('\n');
  }

  /** Resolves with [tcp, http] once the process printed its listening line. */
  listening(): Promise<[string, string]> {
    return new Promise((resolve, reject) => {
      const re = /listening on TCP (\S+), HTTP (\S+)/;
      const found = () => {
        for (const line of this.lines) {
          const m = re.exec(line);
          if (m !== null) return [m[1] as string, m[2] as string] as [string, string];
        }
        return null;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.name} did not print its listening line within ${START_DEADLINE_MS} ms`));
      }, START_DEADLINE_MS);
      const onData = () => {
        const m = found();
        if (m !== null) {
          cleanup();
          resolve(m);
        }
      };
      const onExit = () => {
        cleanup();
        reject(new Error(`${this.name} exited before listening: ${JSON.stringify(this.exit)}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.child.stdout?.off('data', onData);
        this.child.stderr?.off('data', onData);
        this.child.off('exit', onExit);
      };
      // Our own 'data' listeners were registered first, so `lines` is up to date when these run.
      this.child.stdout?.on('data', onData);
      this.child.stderr?.on('data', onData);
      this.child.once('exit', onExit);
      onData();
      if (this.exit !== null) onExit();
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Sends `signal` and waits for the exit; SIGKILLs a process still alive after the deadline. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', deadlineMs = STOP_DEADLINE_MS): Promise<Exit> {
    if (!this.running) return this.exited;
    this.child.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs);
    });
    const first = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (first !== 'late') return first;
    this.child.kill('SIGCONT');
    this.child.kill('SIGKILL');
    const exit = await this.exited;
    throw new Error(`${this.name} ignored ${signal} for ${deadlineMs} ms and was SIGKILLed (${JSON.stringify(exit)})`);
  }

  private keep(line: string): void {
    this.lines.push(line);
    if (this.lines.length > LOG_LINES_KEPT) this.lines.splice(0, this.lines.length - LOG_LINES_KEPT);
  }

  /** Adds a line to this process's kept output (e.g. what the test did to it, and when). */
  note(text: string): void {
    this.keep(`<test: ${text}>`);
  }
}

export interface NsqdSpec {
  name: string;
  lookupdTcpAddresses: readonly string[];
  args?: readonly string[];
  /**
   * --data-path to use (the caller owns it: it is not removed by `killAll()`); by default a
   * fresh temporary directory that `killAll()` removes.
   */
  dataPath?: string;
}

/** Every process a test started; `killAll()` in afterEach leaves nothing behind. */
export class ProcessGroup {
  private readonly processes: DaemonProcess[] = [];
  private readonly dirs: string[] = [];

  /** All processes ever started in this group (restarts included), oldest first. */
  get all(): readonly DaemonProcess[] {
    return this.processes;
  }

  async startLookupd(name: string, args: readonly string[] = []): Promise<DaemonProcess> {
    return this.start(name, 'nsqlookupd', [...LOOPBACK_LISTENERS, ...args]);
  }

  async startNsqd(spec: NsqdSpec): Promise<DaemonProcess> {
    let dataPath = spec.dataPath;
    if (dataPath === undefined) {
      dataPath = await mkdtemp(join(tmpdir(), 'nsq-ts-cluster-'));
      this.dirs.push(dataPath);
    }
    const lookupds = spec.lookupdTcpAddresses.flatMap((a) => ['--lookupd-tcp-address', a]);
    return this.start(spec.name, 'nsqd', [
      ...LOOPBACK_LISTENERS,
      '--data-path',
      dataPath,
      ...lookupds,
      ...(spec.args ?? []),
    ]);
  }

  /** Starts `previous` again with the same arguments, on the ports it had. */
  async restart(previous: DaemonProcess): Promise<DaemonProcess> {
    if (previous.running) throw new Error(`${previous.name} is still running`);
    const args = [...previous.args];
    const tcp = args.indexOf('--tcp-address');
    const http = args.indexOf('--http-address');
    args[tcp + 1] = previous.tcpAddress;
    args[http + 1] = previous.httpAddress;
    return this.start(previous.name, previous.kind, args);
  }

  /** SIGKILLs every process still alive, reaps them all, removes the data directories. */
  async killAll(): Promise<void> {
    for (const p of this.processes) {
      if (p.running) {
        p.signal('SIGKILL');
      }
    }
    await Promise.all(this.processes.map((p) => p.exited));
    await Promise.all(this.dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  }

  /** Every process's recent output, for a failure message. */
  logs(): string {
    return this.processes.map((p) => p.logs()).join('\n');
  }

  private async start(name: string, kind: DaemonKind, args: string[]): Promise<DaemonProcess> {
    const child = spawn(process.execPath, [BINARIES[kind], ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const proc = new DaemonProcess(name, kind, args, child);
    this.processes.push(proc);
    const [tcp, http] = await proc.listening();
    proc.tcpAddress = tcp;
    proc.httpAddress = http;
    await waitUntil(
      `${name} GET /ping`,
      async () => {
        if (!proc.running) throw new Error(`${name} exited: ${proc.logs()}`);
        const res = await fetch(`http://${http}/ping`, { signal: AbortSignal.timeout(2_000) });
        return res.status === 200 && (await res.text()) === 'OK';
      },
      { timeoutMs: START_DEADLINE_MS },
    );
    return proc;
  }
}
