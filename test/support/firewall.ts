/**
 * Real packet drops on the loopback interface for network-partition tests, with iptables.
 *
 * - Every rule this process adds carries the comment `nsq-ts-test-<pid>`, so `healAll()` removes
 *   exactly these rules and nothing else (call it from afterEach). A process 'exit' hook removes
 *   them on a normal exit; rules left by a test process that died without one (SIGKILL, a vitest
 *   worker torn down, a crash) are swept by the next {@link probeFirewall}, as their pid is gone.
 * - Rules only ever match 127.0.0.1 → 127.0.0.1 TCP on `lo`, and only ports of processes the test
 *   started, so nothing else on the machine is affected.
 * - A dropped packet is silently lost (no RST, no ICMP): both ends see a connection that is
 *   open but silent, which is what a real network partition looks like.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);
const IPTABLES = 'iptables';
/** Wait up to 5 s for the xtables lock rather than failing when another iptables call runs. */
const LOCK = ['-w', '5'];
const TAG_PREFIX = 'nsq-ts-test-';
const TAG_RE = new RegExp(`--comment "?${TAG_PREFIX}(\\d+)"?(?:\\s|$)`);

function loopbackTcp(): string[] {
  return ['-i', 'lo', '-s', '127.0.0.1/32', '-d', '127.0.0.1/32', '-p', 'tcp'];
}

/** `iptables -S INPUT` lines carrying an nsq-ts test comment, with the pid in the comment. */
function taggedRules(listing: string): Array<{ pid: number; spec: string[] }> {
  const out: Array<{ pid: number; spec: string[] }> = [];
  for (const line of listing.split('\n')) {
    const m = TAG_RE.exec(line);
    if (m === null || !line.startsWith('-A INPUT ')) continue;
    // "-A INPUT <spec…>" → the spec, as -D takes it; our comments never contain spaces or quotes.
    out.push({ pid: Number(m[1]), spec: line.slice('-A INPUT '.length).trim().replaceAll('"', '').split(/\s+/) });
  }
  return out;
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The iptables rules of one test process. */
export class Firewall {
  readonly tag: string;
  private exitHook: (() => void) | null = null;

  constructor(readonly pid: number = process.pid) {
    this.tag = `${TAG_PREFIX}${pid}`;
  }

  /**
   * Partitions every connection that uses `port` on 127.0.0.1 (as a listening port or as a
   * client's ephemeral port): packets in both directions are dropped.
   */
  async isolatePort(port: number): Promise<void> {
    await this.add(['--dport', String(port)]);
    await this.add(['--sport', String(port)]);
  }

  /**
   * Drops connection attempts (bare SYNs) to `port`: established connections keep working, new
   * ones hang in SYN-SENT until the dialer gives up, as across a partition.
   */
  async refuseNewConnections(port: number): Promise<void> {
    await this.add(['--dport', String(port), '--tcp-flags', 'SYN,ACK,FIN,RST', 'SYN']);
  }

  /** This process's rules, as `iptables -S` prints them. */
  async rules(): Promise<string[]> {
    const { stdout } = await run(IPTABLES, [...LOCK, '-S', 'INPUT']);
    return stdout.split('\n').filter((line) => taggedRules(line).some((r) => r.pid === this.pid));
  }

  /** Removes every rule this process added; resolves with how many there were. */
  async healAll(): Promise<number> {
    const { stdout } = await run(IPTABLES, [...LOCK, '-S', 'INPUT']);
    const mine = taggedRules(stdout).filter((r) => r.pid === this.pid);
    for (const r of mine) await run(IPTABLES, [...LOCK, '-D', 'INPUT', ...r.spec]);
    return mine.length;
  }

  private async add(match: string[]): Promise<void> {
    this.armExitHook();
    await run(IPTABLES, [
      ...LOCK,
      '-I',
      'INPUT',
      ...loopbackTcp(),
      ...match,
      '-m',
      'comment',
      '--comment',
      this.tag,
      '-j',
      'DROP',
    ]);
  }

  /** Removes this process's rules synchronously when it exits, whatever the tests did. */
  private armExitHook(): void {
    if (this.exitHook !== null) return;
    this.exitHook = () => healAllSync(this.pid);
    process.once('exit', this.exitHook);
  }
}

function healAllSync(pid: number): void {
  try {
    const listing = execFileSync(IPTABLES, [...LOCK, '-S', 'INPUT'], { encoding: 'utf8' });
    for (const r of taggedRules(listing)) {
      if (r.pid === pid) execFileSync(IPTABLES, [...LOCK, '-D', 'INPUT', ...r.spec], { stdio: 'ignore' });
    }
  } catch {
    // nothing more can be done at exit; the next probe sweeps rules of dead pids
  }
}

/** Removes rules left by nsq-ts test processes that no longer exist. */
async function sweepStaleRules(): Promise<void> {
  const { stdout } = await run(IPTABLES, [...LOCK, '-S', 'INPUT']);
  for (const r of taggedRules(stdout)) {
    if (r.pid !== process.pid && !alive(r.pid)) {
      await run(IPTABLES, [...LOCK, '-D', 'INPUT', ...r.spec]).catch(() => undefined);
    }
  }
}

function once<T>(emitter: Server | Socket, event: string): Promise<T> {
  return new Promise((resolve, reject) => {
    emitter.once(event, resolve as (v: unknown) => void);
    emitter.once('error', reject);
  });
}

/**
 * Whether partitions can be made here, found by doing it: a loopback TCP connection carries a
 * byte, the port is isolated, a second byte must not arrive, the rules are removed, and the
 * second byte must then arrive (TCP retransmits it). Resolves with null when all of that worked,
 * otherwise with the reason (not root, no iptables, no comment match, rules without effect…).
 */
export async function probeFirewall(): Promise<string | null> {
  if (process.platform !== 'linux') return `iptables partitions need Linux (this is ${process.platform})`;
  try {
    await run(IPTABLES, [...LOCK, '-S', 'INPUT']);
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return 'iptables is not installed (apt-get install iptables)';
    return `iptables cannot list rules (root/CAP_NET_ADMIN needed): ${(e.stderr ?? e.message).trim()}`;
  }
  await sweepStaleRules().catch(() => undefined);
  const firewall = new Firewall();
  const server = createServer();
  let client: Socket | null = null;
  let accepted: Socket | null = null;
  try {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as { port: number }).port;
    const acceptedP = once<Socket>(server, 'connection');
    client = netConnect({ host: '127.0.0.1', port });
    await once(client, 'connect');
    accepted = await acceptedP;
    let received = '';
    accepted.on('data', (d: Buffer) => {
      received += d.toString('latin1');
    });
    client.write('a');
    await until(() => received === 'a', 2_000);
    try {
      await firewall.isolatePort(port);
    } catch (err) {
      const e = err as Error & { stderr?: string };
      return `iptables cannot add a DROP rule with a comment match: ${(e.stderr ?? e.message).trim()}`;
    }
    client.write('b');
    await new Promise((resolve) => setTimeout(resolve, 400));
    if (received !== 'a') return 'an iptables DROP rule on lo did not stop loopback traffic';
    await firewall.healAll();
    if (!(await until(() => received === 'ab', 5_000))) {
      return 'loopback traffic did not resume after the DROP rules were removed';
    }
    return null;
  } catch (err) {
    return `partition probe failed: ${(err as Error).message}`;
  } finally {
    await firewall.healAll().catch(() => undefined);
    client?.destroy();
    accepted?.destroy();
    server.close();
  }
}

async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}
