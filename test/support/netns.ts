/**
 * Separate "hosts" for tests, as Linux network namespaces (needs root, `ip` and `iptables`).
 *
 * ```
 *   nsqts-<pid>-<n>-hub      br0 ─┬─ v0 ══ eth0  nsqts-<pid>-<n>-<member0>   10.213.<n>.1/24
 *   (no address, no route)        ├─ v1 ══ eth0  nsqts-<pid>-<n>-<member1>   10.213.<n>.2/24
 *                                 └─ …
 * ```
 *
 * - Every interface is created inside the lab's own namespaces (`ip -n hub link add … peer …
 *   netns <member>`): the root namespace's interfaces, routes and firewall are never touched, and
 *   with no route out of the subnet no packet can leave the lab.
 * - Partitions are iptables DROP rules inside the members' namespaces (their own netfilter
 *   tables): packets are really dropped, silently — no RST, no ICMP — as across a real partition.
 * - Names carry the creating process's pid: `cleanup()` removes one lab, an 'exit' hook removes
 *   it if the test process exits first, and every `netnsSupport()` / `NetnsLab.create()` sweeps
 *   namespaces of pids that no longer exist (a crashed or SIGKILLed earlier run), killing the
 *   processes left inside them first, by pid.
 */
import { type ChildProcess, execFile, execFileSync, spawn as spawnProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { alive } from './firewall.js';

const run = promisify(execFile);
const PREFIX = 'nsqts-';
const NAME_RE = /^nsqts-(\d+)-/;
const MEMBER_RE = /^[a-z][a-z0-9]{0,11}$/;
/** Wait for the xtables lock (shared by every namespace on the host) instead of failing. */
const LOCK = ['-w', '5'];
const KILL_DEADLINE_MS = 5_000;

let labSeq = 0;

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args);
  return stdout;
}

/** Every namespace name on the host (`ip netns list` prints "name (id: n)"). */
export async function listNamespaces(): Promise<string[]> {
  const out = await ip('netns', 'list');
  return out
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/** Kills (SIGKILL, by pid) whatever still runs inside namespace `ns`. */
async function killInside(ns: string): Promise<void> {
  const out = await ip('netns', 'pids', ns).catch(() => '');
  const pids = out
    .split('\n')
    .filter((p) => p !== '')
    .map(Number);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  const deadline = Date.now() + KILL_DEADLINE_MS;
  while (pids.some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** Deletes namespaces left by nsq-ts test processes that no longer exist; resolves with how many. */
export async function sweepStaleNamespaces(): Promise<number> {
  let swept = 0;
  for (const ns of await listNamespaces()) {
    const m = NAME_RE.exec(ns);
    if (m === null || Number(m[1]) === process.pid || alive(Number(m[1]))) continue;
    await killInside(ns);
    await ip('netns', 'del', ns).catch(() => undefined);
    swept++;
  }
  return swept;
}

let support: Promise<string | null> | null = null;

/**
 * Null when labs can be built here, else why not (for `describe.skipIf`), found by building one:
 * Linux, root, `ip` and `iptables` present, a namespace created and iptables listing in it.
 */
export function netnsSupport(): Promise<string | null> {
  support ??= probe();
  return support;
}

async function probe(): Promise<string | null> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces need root';
  for (const [cmd, pkg] of [
    ['ip', 'iproute2'],
    ['iptables', 'iptables'],
  ] as const) {
    try {
      await run(cmd, ['-V']);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${cmd} is not installed (apt-get install ${pkg})`;
    }
  }
  let lab: NetnsLab | null = null;
  try {
    lab = await NetnsLab.create(['probe']);
    await lab.exec('probe', 'iptables', [...LOCK, '-S', 'INPUT']);
    return null;
  } catch (err) {
    const e = err as Error & { stderr?: string };
    return `cannot build a network namespace lab here: ${(e.stderr ?? e.message).trim()}`;
  } finally {
    await lab?.cleanup();
  }
}

/** A hub namespace with a bridge, and one namespace per member on it. */
export class NetnsLab {
  readonly id: string;
  readonly subnet: string;
  private readonly hub: string;
  private readonly children = new Set<ChildProcess>();
  private readonly exitHook = () => this.cleanupSync();
  private cleaned = false;

  private constructor(readonly members: readonly string[]) {
    const seq = labSeq++;
    this.id = `${PREFIX}${process.pid}-${seq}`;
    this.hub = `${this.id}-hub`;
    this.subnet = `10.213.${seq % 256}`;
  }

  /** Builds the lab; on any failure removes what it had built and rejects. */
  static async create(members: readonly string[]): Promise<NetnsLab> {
    if (members.length === 0 || members.length > 250) throw new Error('a lab needs 1-250 members');
    for (const m of members) {
      if (!MEMBER_RE.test(m) || m === 'hub') throw new Error(`invalid member name ${JSON.stringify(m)}`);
    }
    if (new Set(members).size !== members.length) throw new Error('member names must be unique');
    await sweepStaleNamespaces();
    const lab = new NetnsLab(members);
    process.once('exit', lab.exitHook);
    try {
      await lab.build();
    } catch (err) {
      await lab.cleanup();
      throw err;
    }
    return lab;
  }

  private async build(): Promise<void> {
    await ip('netns', 'add', this.hub);
    await ip('-n', this.hub, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', this.hub, 'link', 'set', 'br0', 'up');
    for (const [i, member] of this.members.entries()) {
      const ns = this.namespace(member);
      await ip('netns', 'add', ns);
      // Both ends are born where they live: v<i> in the hub, eth0 in the member's namespace.
      await ip('-n', this.hub, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
      await ip('-n', this.hub, 'link', 'set', `v${i}`, 'master', 'br0', 'up');
      await ip('-n', ns, 'addr', 'add', `${this.address(member)}/24`, 'dev', 'eth0');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  }

  /** The namespace a member runs in. */
  namespace(member: string): string {
    this.check(member);
    return `${this.id}-${member}`;
  }

  /** The member's address on the lab's /24. */
  address(member: string): string {
    return `${this.subnet}.${this.members.indexOf(this.check(member)) + 1}`;
  }

  /**
   * Starts `command` inside the member's namespace (`ip netns exec` setns()es and execs, so the
   * child's pid is the command's). Output is piped; `cleanup()` SIGKILLs it if still running.
   */
  spawn(member: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const child = spawnProcess('ip', ['netns', 'exec', this.namespace(member), command, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Runs `command` inside the member's namespace to completion; rejects on a non-zero exit. */
  async exec(
    member: string,
    command: string,
    args: readonly string[],
    timeoutMs = 10_000,
  ): Promise<{ stdout: string; stderr: string }> {
    return run('ip', ['netns', 'exec', this.namespace(member), command, ...args], { timeout: timeoutMs });
  }

  /** Drops every packet between members `a` and `b`, both ways. */
  async partition(a: string, b: string): Promise<void> {
    for (const [self, peer] of [
      [a, b],
      [b, a],
    ]) {
      const other = this.address(peer);
      await this.iptables(self, ['-A', 'INPUT', '-s', other, '-j', 'DROP']);
      await this.iptables(self, ['-A', 'OUTPUT', '-d', other, '-j', 'DROP']);
    }
  }

  /** Drops every packet between member `a` and all the others (its loopback keeps working). */
  async isolate(a: string): Promise<void> {
    await this.iptables(a, ['-A', 'INPUT', '-i', 'eth0', '-j', 'DROP']);
    await this.iptables(a, ['-A', 'OUTPUT', '-o', 'eth0', '-j', 'DROP']);
  }

  /** Removes every partition (the members' namespaces hold no other rules). */
  async heal(): Promise<void> {
    for (const m of this.members) {
      await this.iptables(m, ['-F', 'INPUT']);
      await this.iptables(m, ['-F', 'OUTPUT']);
    }
  }

  /** The DROP rules in force, as `iptables -S` prints them, per member. */
  async rules(): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const m of this.members) {
      const { stdout } = await this.exec(m, 'iptables', [...LOCK, '-S']);
      out[m] = stdout.split('\n').filter((line) => line.includes('-j DROP'));
    }
    return out;
  }

  /** Kills every process in the lab (ours by pid, then whatever is left inside), deletes every namespace. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    process.off('exit', this.exitHook);
    const exits = [...this.children].map((c) => new Promise((resolve) => c.once('exit', resolve)));
    for (const c of this.children) c.kill('SIGKILL');
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, KILL_DEADLINE_MS))]);
    const ours = (await listNamespaces()).filter((ns) => ns.startsWith(`${this.id}-`));
    // Members first: deleting a member namespace destroys its eth0 and with it the veth's hub end.
    for (const ns of ours.sort((x, y) => Number(x === this.hub) - Number(y === this.hub))) {
      await killInside(ns);
      await ip('netns', 'del', ns).catch(() => undefined);
    }
  }

  /** At process exit: kill and delete synchronously, as far as possible. */
  private cleanupSync(): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const c of this.children) c.kill('SIGKILL');
    for (const ns of [...this.members.map((m) => `${this.id}-${m}`), this.hub]) {
      try {
        const pids = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean);
        for (const pid of pids) process.kill(Number(pid), 'SIGKILL');
        execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
      } catch {
        // what is left is swept by the next run (its pid is gone)
      }
    }
  }

  private async iptables(member: string, args: readonly string[]): Promise<void> {
    await this.exec(member, 'iptables', [...LOCK, ...args]);
  }

  private check(member: string): string {
    if (!this.members.includes(member)) throw new Error(`no member ${JSON.stringify(member)} in lab ${this.id}`);
    return member;
  }
}
