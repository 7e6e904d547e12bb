/**
 * A replica group on separate "hosts" for tests (docs/replication.md): etcd, nsqlookupd, every
 * member, a client and a control host each in a network namespace of their own
 * (test/support/netns.ts). The test process cannot reach the namespaces, so requests go through
 * agents (test/support/ha-agent.mjs): `ctl` is never partitioned and asks members for `GET /ha`,
 * `client` runs the producers and the consumer, and can be cut off from a member like any host.
 *
 * Members listen on fixed ports of their own address (nothing else lives there): TCP 4150, HTTP
 * 4151, replication 4153; data in a temporary directory per lab, kept across a member's restarts
 * and removed by `cleanup()`, which also kills every process and deletes every namespace.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { HaStatus } from '@nsq-ts/http-client';
import { type EtcdServer, startEtcdInLab } from './etcd.js';
import { NetnsLab } from './netns.js';
import { DaemonProcess, waitUntil } from './processes.js';

const NSQD_BIN = new URL('../../packages/nsqd/bin/nsqd.js', import.meta.url).pathname;
const LOOKUPD_BIN = new URL('../../packages/lookupd/bin/nsqlookupd.js', import.meta.url).pathname;
const AGENT = new URL('./ha-agent.mjs', import.meta.url).pathname;
const CLIENT_URL = new URL('../../packages/client/dist/index.js', import.meta.url).href;
const REQUEST_DEADLINE_MS = 30_000;

/** What an agent answers (`reply` is the request's id); the fields depend on the op. */
export interface AgentReply {
  reply: number;
  error?: string;
  status?: number;
  body?: string;
  [key: string]: unknown;
}

export interface AgentProgress {
  ok: number;
  refused: number;
  indeterminate: number;
  received: number;
}

/** The agent's `stop` answer: every publish's class. */
export interface PublishHistory {
  counts: { ok: number; refused: number; indeterminate: number };
  bodies: { ok: string[]; refused: string[]; indeterminate: string[] };
  /** [from, to] wall-clock ms: a failed publish until the next acknowledgement. */
  outages: [number, number][];
}

/** One agent process in a namespace, and its replies. */
export class Agent {
  progress: AgentProgress = { ok: 0, refused: 0, indeterminate: 0, received: 0 };
  private readonly replies = new Map<number, AgentReply>();
  private readonly stderr: string[] = [];
  private nextId = 1;
  private ready = false;

  constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
      let line: { reply?: number; progress?: AgentProgress; ready?: boolean };
      try {
        line = JSON.parse(text);
      } catch {
        this.stderr.push(text);
        return;
      }
      if (line.ready === true) this.ready = true;
      if (line.progress !== undefined) this.progress = line.progress;
      if (line.reply !== undefined) this.replies.set(line.reply, line as AgentReply);
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.stderr.push(d.toString('utf8'));
      if (this.stderr.length > 200) this.stderr.shift();
    });
  }

  started(): Promise<true> {
    return waitUntil(`agent ${this.name} ready`, () => {
      if (this.child.exitCode !== null) throw new Error(`agent ${this.name} exited: ${this.stderr.join('')}`);
      return this.ready || undefined;
    });
  }

  async request(op: string, args: Record<string, unknown> = {}, timeoutMs = REQUEST_DEADLINE_MS): Promise<AgentReply> {
    const id = this.nextId++;
    this.child.stdin?.write(`${JSON.stringify({ id, op, ...args })}\n`);
    const reply = await waitUntil(`agent ${this.name}: ${op}`, () => this.replies.get(id), {
      timeoutMs,
      intervalMs: 20,
    });
    this.replies.delete(id);
    if (reply.error !== undefined) throw new Error(`agent ${this.name}: ${op}: ${reply.error}`);
    return reply;
  }

  logs(): string {
    return this.stderr.map((l) => `agent ${this.name} | ${l}`).join('\n');
  }
}

interface ChannelStats {
  channel_name: string;
  depth: number;
  in_flight_count: number;
  deferred_count: number;
}

/** A history checked against the deliveries: what the checker of test/ha-jepsen-netns.test.ts asserts. */
export interface Verdict {
  /** Acknowledged, never delivered. */
  lost: string[];
  /** Refused, delivered all the same. */
  refusedDelivered: string[];
  /** Indeterminate publishes that were delivered (allowed either way). */
  indeterminateDelivered: number;
  /** Deliveries beyond the first of a body (at least once allows them). */
  duplicates: number;
}

export function judge(history: PublishHistory, counts: Record<string, number>): Verdict {
  return {
    lost: history.bodies.ok.filter((b) => counts[b] === undefined),
    refusedDelivered: history.bodies.refused.filter((b) => counts[b] !== undefined),
    indeterminateDelivered: history.bodies.indeterminate.filter((b) => counts[b] !== undefined).length,
    duplicates: Object.values(counts).reduce((n, c) => n + c - 1, 0),
  };
}

export class HaLab {
  readonly procs = new Map<string, DaemonProcess>();
  private readonly dead: DaemonProcess[] = [];

  private constructor(
    readonly lab: NetnsLab,
    readonly members: readonly string[],
    private readonly memberArgs: readonly string[],
    private readonly dataDir: string,
    readonly etcd: EtcdServer,
    readonly lookupd: DaemonProcess,
    readonly ctl: Agent,
    readonly client: Agent,
  ) {}

  /**
   * Builds the lab and starts etcd, lookupd and both agents (no member yet). On failure
   * everything built is removed before the error is thrown.
   */
  static async create(members: readonly string[], memberArgs: readonly string[] = []): Promise<HaLab> {
    const lab = await NetnsLab.create(['etcd', 'lookupd', ...members, 'client', 'ctl']);
    let etcd: EtcdServer | null = null;
    let lookupd: DaemonProcess | null = null;
    try {
      etcd = await startEtcdInLab(lab, 'etcd');
      const lookupdArgs = [
        `--tcp-address=${lab.address('lookupd')}:4160`,
        `--http-address=${lab.address('lookupd')}:4161`,
        `--broadcast-address=${lab.address('lookupd')}`,
      ];
      const l = new DaemonProcess(
        'lookupd',
        'nsqlookupd',
        lookupdArgs,
        lab.spawn('lookupd', process.execPath, [LOOKUPD_BIN, ...lookupdArgs], { ...process.env, NODE_OPTIONS: '' }),
      );
      lookupd = l;
      await waitUntil('lookupd listening', () => /listening on TCP/.test(l.logs()), { timeoutMs: 20_000 });
      const agent = (name: string) =>
        new Agent(name, lab.spawn(name, process.execPath, [AGENT], { ...process.env, NODE_OPTIONS: '', CLIENT_URL }));
      const ctl = agent('ctl');
      const client = agent('client');
      await ctl.started();
      await client.started();
      const dataDir = await mkdtemp(join(tmpdir(), `nsq-ts-halab-${lab.id}-`));
      return new HaLab(lab, members, memberArgs, dataDir, etcd, l, ctl, client);
    } catch (err) {
      lookupd?.signal('SIGKILL');
      await etcd?.stop();
      await lab.cleanup();
      throw err;
    }
  }

  /** A member's client TCP address (its host pool entry), HTTP address, on its namespace. */
  tcp(member: string): string {
    return `${this.lab.address(member)}:4150`;
  }

  http(member: string): string {
    return `${this.lab.address(member)}:4151`;
  }

  get lookupdHttp(): string {
    return `${this.lab.address('lookupd')}:4161`;
  }

  /** Starts (or restarts, on the same data path) member `name`. */
  start(name: string, extra: readonly string[] = []): DaemonProcess {
    const old = this.procs.get(name);
    if (old?.running) throw new Error(`${name} is running`);
    if (old !== undefined) this.dead.push(old);
    const address = this.lab.address(name);
    const args = [
      `--tcp-address=${address}:4150`,
      `--http-address=${address}:4151`,
      `--broadcast-address=${address}`,
      `--data-path=${join(this.dataDir, name)}`,
      `--lookupd-tcp-address=${this.lab.address('lookupd')}:4160`,
      '--ha-group=g',
      `--ha-member-id=${name}`,
      `--etcd-endpoints=${this.etcd.clientUrl}`,
      `--replication-address=${address}:4153`,
      '--ha-lease-ttl=2s',
      '--replication-timeout=2s',
      '--sync-every=1',
      ...this.memberArgs,
      ...extra,
    ];
    const p = new DaemonProcess(
      name,
      'nsqd',
      args,
      this.lab.spawn(name, process.execPath, [NSQD_BIN, ...args], { ...process.env, NODE_OPTIONS: '' }),
    );
    this.procs.set(name, p);
    return p;
  }

  running(name: string): boolean {
    return this.procs.get(name)?.running === true;
  }

  /** Sends `signal` and waits for the process to exit. */
  async kill(name: string, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.procs.get(name);
    if (p === undefined || !p.running) return;
    p.note(`${signal}`);
    if (signal === 'SIGKILL') {
      p.signal(signal);
      await p.exited;
    } else await p.stop(signal, 20_000);
  }

  /** The member's GET /ha, asked from the control host; null when it does not answer. */
  async ha(name: string): Promise<HaStatus | null> {
    const r = await this.ctl.request('http', { url: `http://${this.http(name)}/ha`, timeoutMs: 2_000 });
    if (r.status !== 200) return null;
    return JSON.parse(r.body as string) as HaStatus;
  }

  /** A member that says it leads, and its status (null when none does). */
  async leader(): Promise<{ name: string; status: HaStatus } | null> {
    for (const name of this.members) {
      if (!this.running(name)) continue;
      const status = await this.ha(name);
      if (status?.role === 'leader') return { name, status };
    }
    return null;
  }

  /** Waits until `name` leads with every other running member in its in-sync set. */
  async settled(name: string, timeoutMs = 30_000): Promise<HaStatus> {
    return waitUntil(
      `${name} leads with every running member in sync`,
      async () => {
        const s = await this.ha(name);
        if (s?.role !== 'leader') return undefined;
        return this.members.every((m) => !this.running(m) || s.in_sync.includes(m)) ? s : undefined;
      },
      { timeoutMs, intervalMs: 200 },
    );
  }

  /** Waits until some member leads with every running member in sync; resolves with its name. */
  async anySettled(timeoutMs = 60_000): Promise<string> {
    return waitUntil(
      'a leader with every running member in sync',
      async () => {
        const l = await this.leader();
        if (l === null) return undefined;
        return this.members.every((m) => !this.running(m) || l.status.in_sync.includes(m)) ? l.name : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  }

  /** The client's deliveries so far, per body. */
  async received(): Promise<Record<string, number>> {
    return (await this.client.request('received')).counts as Record<string, number>;
  }

  /**
   * Waits until the leader's `channel` holds nothing more to deliver (no depth, nothing in flight
   * or deferred) and every body in `expected` was delivered to the client; resolves with the
   * deliveries. Anything stored and deliverable has been delivered by then.
   */
  async drained(topic: string, channel: string, expected: readonly string[], timeoutMs = 60_000) {
    return waitUntil(
      `${topic}/${channel} drained`,
      async () => {
        const l = await this.leader();
        if (l === null) return undefined;
        const r = await this.ctl.request('http', {
          url: `http://${this.http(l.name)}/stats?format=json&topic=${topic}&channel=${channel}`,
        });
        if (r.status !== 200) return undefined;
        const stats = JSON.parse(r.body as string) as { topics: { channels: ChannelStats[] }[] };
        const ch = stats.topics[0]?.channels.find((c) => c.channel_name === channel);
        if (ch === undefined || ch.depth + ch.in_flight_count + ch.deferred_count > 0) return undefined;
        const counts = await this.received();
        return expected.every((b) => counts[b] !== undefined) ? counts : undefined;
      },
      { timeoutMs, intervalMs: 300 },
    );
  }

  logs(): string {
    return [
      ...this.dead.map((p) => p.logs()),
      ...[...this.procs.values()].map((p) => p.logs()),
      this.lookupd.logs(),
      this.ctl.logs(),
      this.client.logs(),
    ].join('\n');
  }

  /** Kills every process, deletes the namespaces and the data. Idempotent. */
  async cleanup(): Promise<void> {
    for (const p of [...this.procs.values(), this.lookupd]) {
      if (p.running) p.signal('SIGKILL');
      await p.exited;
    }
    await this.etcd.stop();
    await this.lab.cleanup();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
