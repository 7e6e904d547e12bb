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
import { afterEach } from 'vitest';
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
  lastOkAt: number;
}

/** The agent's `stop` answer: every publish's class. */
export interface PublishHistory {
  counts: { ok: number; refused: number; indeterminate: number };
  bodies: { ok: string[]; refused: string[]; indeterminate: string[] };
  /** [from, to] wall-clock ms: a failed publish until the next acknowledgement. */
  outages: [number, number][];
  /** Wall-clock ms of every acknowledgement, in order, per transport. */
  ackTimes: { tcp: number[]; http: number[] };
}

export interface Interruption {
  /** The longest outage: publishes refused or unanswered until the next acknowledgement (any transport). */
  outageMs: number;
  /** The longest time between two successive acknowledgements over TCP (counts publishes that waited). */
  tcpGapMs: number;
  /** The same over HTTP. */
  httpGapMs: number;
}

/**
 * How long publishing was interrupted after each of `starts` (wall-clock ms, ascending; the agents'
 * hosts and the test's share one clock), each interruption counted for the latest start before it.
 */
export function interruptions(history: PublishHistory, starts: readonly number[]): Interruption[] {
  const out = starts.map(() => ({ outageMs: 0, tcpGapMs: 0, httpGapMs: 0 }));
  const owner = (t: number) => starts.findLastIndex((s) => s <= t);
  for (const [a, b] of history.outages) {
    const e = out[owner(a)];
    if (e !== undefined) e.outageMs = Math.max(e.outageMs, b - a);
  }
  for (const via of ['tcp', 'http'] as const) {
    const acks = history.ackTimes[via];
    for (let i = 0; i + 1 < acks.length; i++) {
      const [a, b] = [acks[i] as number, acks[i + 1] as number];
      const e = out[owner(b)];
      if (e === undefined || b <= (starts[owner(b)] as number)) continue;
      if (via === 'tcp') e.tcpGapMs = Math.max(e.tcpGapMs, b - a);
      else e.httpGapMs = Math.max(e.httpGapMs, b - a);
    }
  }
  return out;
}

/** One agent process in a namespace, and its replies. */
export class Agent {
  progress: AgentProgress = { ok: 0, refused: 0, indeterminate: 0, received: 0, lastOkAt: 0 };
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

/** A history checked against the deliveries: what test/ha-chaos-netns.test.ts and the other netns tests assert. */
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

  /**
   * Waits until `name` leads with every other running member in its in-sync set and streaming from
   * it (the follower itself says it is connected: a restarted process, not the link of its
   * predecessor that the leader has not dropped yet).
   */
  async settled(name: string, timeoutMs = 30_000): Promise<HaStatus> {
    return waitUntil(`${name} leads with every running member in sync`, () => this.settledNow(name), {
      timeoutMs,
      intervalMs: 200,
    });
  }

  /** Waits until some member leads with every running member in sync (as `settled`); resolves with its name. */
  async anySettled(timeoutMs = 60_000): Promise<string> {
    return waitUntil(
      'a leader with every running member in sync',
      async () => {
        const l = await this.leader();
        return l !== null && (await this.settledNow(l.name)) !== undefined ? l.name : undefined;
      },
      { timeoutMs, intervalMs: 250 },
    );
  }

  private async settledNow(name: string): Promise<HaStatus | undefined> {
    const s = await this.ha(name);
    if (s?.role !== 'leader') return undefined;
    for (const m of this.members) {
      if (m === name || !this.running(m)) continue;
      if (!s.in_sync.includes(m) || s.followers?.find((f) => f.member_id === m)?.connected !== true) return undefined;
      const own = await this.ha(m);
      if (own?.leader !== name || own.connected !== true) return undefined;
    }
    return s;
  }

  /**
   * Starts the members in order (the first founds the group, the others join it), waits until all
   * are in sync, creates `topic`/`channel` on the leader and has the client consume it through lookupd.
   */
  async form(topic = 't', channel = 'c'): Promise<void> {
    const [first, ...rest] = this.members as [string, ...string[]];
    this.start(first);
    await waitUntil(`${first} leads`, async () => (await this.ha(first))?.role === 'leader', { timeoutMs: 20_000 });
    for (const m of rest) this.start(m);
    await this.settled(first);
    for (const path of [`topic/create?topic=${topic}`, `channel/create?topic=${topic}&channel=${channel}`]) {
      const r = await this.ctl.request('http', { url: `http://${this.http(first)}/${path}`, method: 'POST' });
      if (r.status !== 200) throw new Error(`POST /${path}: ${r.status} ${r.body}`);
    }
    await this.client.request('consume', { topic, channel, lookupd: [this.lookupdHttp] });
  }

  /**
   * The client's publishers of unique bodies, half over TCP (a host pool of every member), half over
   * HTTP (each member in turn), each body sent once: a resend after a lost connection could be refused although
   * the first send was stored, and the body would be judged refused.
   */
  async produce(prefix: string, producers = 4, topic = 't'): Promise<void> {
    await this.client.request('produce', {
      topic,
      prefix,
      producers,
      tcp: this.members.map((m) => this.tcp(m)),
      http: this.members.map((m) => this.http(m)),
      retry: false,
      maxPublishAttempts: 1,
    });
  }

  /** Stops the publishers; resolves with every publish's class. */
  async stopProducing(): Promise<PublishHistory> {
    return (await this.client.request('stop', {}, 60_000)) as unknown as PublishHistory;
  }

  /**
   * `history` judged against the deliveries once the leader drained `channel` and every acknowledged
   * body arrived, or, if that does not happen within `timeoutMs`, against what was delivered by then.
   */
  async verdict(history: PublishHistory, topic = 't', channel = 'c', timeoutMs = 60_000): Promise<Verdict> {
    const counts = await this.drained(topic, channel, history.bodies.ok, timeoutMs).catch(async (err: Error) => {
      console.warn(`not drained, judging what was delivered: ${err.message}`);
      return this.received();
    });
    return judge(history, counts);
  }

  /** POST /ha/handover on `from`, preferring `to`; resolves with the HTTP status. */
  async handover(from: string, to: string): Promise<number> {
    const url = `http://${this.http(from)}/ha/handover?to=${to}`;
    return (await this.ctl.request('http', { url, method: 'POST', timeoutMs: 20_000 })).status as number;
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

/**
 * Registers, in the calling describe block, an afterEach that prints a failed test's logs and
 * removes its lab; the returned function builds the current test's lab.
 */
export function haLabPerTest(): (members: readonly string[], memberArgs?: readonly string[]) => Promise<HaLab> {
  let current: HaLab | null = null;
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail' && current !== null) console.log(current.logs());
    await current?.cleanup();
    current = null;
  }, 60_000);
  return async (members, memberArgs = []) => {
    current = await HaLab.create(members, memberArgs);
    return current;
  };
}
