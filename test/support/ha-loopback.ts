/**
 * A replica group of real nsqd processes on loopback (docs/replication.md), with a real etcd and
 * nsqlookupd: members are started and stopped one by one, their `GET /ha` read, and everything is
 * killed and removed by `cleanup()` (call it from afterEach).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Consumer } from '@nsq-ts/client';
import { type EtcdServer, startEtcd } from './etcd.js';
import { DaemonProcess, ProcessGroup, waitUntil } from './processes.js';

const NSQD_BIN = new URL('../../packages/nsqd/bin/nsqd.js', import.meta.url).pathname;

export interface MemberSpec {
  readonly id: string;
  readonly replication: string;
  readonly dataPath: string;
}

export interface Member extends MemberSpec {
  proc: DaemonProcess;
  http: string;
}

export interface HaStatus {
  role: 'leader' | 'follower';
  epoch: number;
  leader: string | null;
  in_sync: string[];
  position: { seq: number; epoch: number };
  connected?: boolean;
  refused?: string;
  followers?: {
    member_id: string;
    connected: boolean;
    in_sync: boolean;
    acked_seq: number;
    lag_batches: number;
    refused: string;
  }[];
  counters: {
    elections_won: number;
    leadership_lost: Record<string, number>;
    isr_shrinks: number;
    isr_expands: number;
    full_copies_served: number;
    full_copies_received: number;
    refused_publishes: number;
    unanswered_publishes: number;
    stream_refusals_sent: number;
    stream_refusals_received: number;
  };
}

export interface StartOptions {
  readonly extra?: readonly string[];
  /** Added to the member's environment. */
  readonly env?: Readonly<Record<string, string>>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts one member of group `g` (2 s lease and replication timeout, --sync-every=1) and waits for its HTTP. */
export async function spawnMember(
  m: MemberSpec,
  lookupdTcp: string,
  etcdUrl: string,
  options: StartOptions = {},
): Promise<Member> {
  const args = [
    NSQD_BIN,
    '--tcp-address=127.0.0.1:0',
    '--http-address=127.0.0.1:0',
    '--broadcast-address=127.0.0.1',
    `--data-path=${m.dataPath}`,
    `--lookupd-tcp-address=${lookupdTcp}`,
    `--ha-group=g`,
    `--ha-member-id=${m.id}`,
    `--etcd-endpoints=${etcdUrl}`,
    `--replication-address=${m.replication}`,
    '--ha-lease-ttl=2s',
    '--replication-timeout=2s',
    '--sync-every=1',
    '--msg-timeout=60s',
    ...(options.extra ?? []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', ...options.env },
  });
  const proc = new DaemonProcess(m.id, 'nsqd', args, child);
  const http = await waitUntil(
    `${m.id} listening`,
    () => {
      if (!proc.running) throw new Error(`${m.id} exited: ${proc.logs()}`);
      return /listening on (?:TCP \S+, )?HTTP (\S+)/.exec(proc.logs())?.[1];
    },
    { timeoutMs: 20_000 },
  );
  return { ...m, proc, http };
}

/** Starts `a`, waits until it leads, then `b`, until it is in the in-sync set and connected. */
export async function formPair(start: (id: string) => Promise<Member>): Promise<[Member, Member]> {
  const a = await start('a');
  await waitUntil('a leads', async () => (await status(a)).role === 'leader', { timeoutMs: 15_000 });
  const b = await start('b');
  await waitUntil(
    'b in sync',
    async () => {
      const s = await status(a);
      return s.in_sync.includes('b') && (await status(b)).connected === true;
    },
    { timeoutMs: 15_000 },
  );
  return [a, b];
}

export class HaLoopback {
  etcd: EtcdServer | null = null;
  readonly group = new ProcessGroup();
  readonly members: Member[] = [];
  private readonly dirs: string[] = [];
  lookupdTcp = '';
  lookupdHttp = '';

  /** etcd and one nsqlookupd. */
  async start(): Promise<void> {
    this.etcd = await startEtcd();
    const lookupd = await this.group.startLookupd('lookupd');
    this.lookupdTcp = lookupd.tcpAddress;
    this.lookupdHttp = lookupd.httpAddress;
  }

  async newMember(id: string): Promise<MemberSpec> {
    const dataPath = await mkdtemp(join(tmpdir(), `nsq-ts-ha-${id}-`));
    this.dirs.push(dataPath);
    return { id, replication: `127.0.0.1:${await freePort()}`, dataPath };
  }

  async startMember(m: MemberSpec, options: StartOptions = {}): Promise<Member> {
    const member = await spawnMember(m, this.lookupdTcp, (this.etcd as EtcdServer).clientUrl, options);
    this.members.push(member);
    return member;
  }

  /** SIGKILL, and forgotten by cleanup(). */
  async kill(m: Member): Promise<void> {
    m.proc.signal('SIGKILL');
    await m.proc.exited;
    this.members.splice(this.members.indexOf(m), 1);
  }

  /** Both up: `a` leads, `b` follows and is in the in-sync set. */
  formGroup(options: StartOptions = {}): Promise<[Member, Member]> {
    return formPair(async (id) => this.startMember(await this.newMember(id), options));
  }

  /** Bodies `channel` delivers through lookupd, in order, until `last` (one in flight at a time: log order). */
  async readUntil(topic: string, channel: string, last: string): Promise<string[]> {
    const got: string[] = [];
    const consumer = new Consumer({
      topic,
      channel,
      lookupdHttpAddresses: [this.lookupdHttp],
      lookupdPollIntervalMs: 200,
      maxInFlight: 1,
      logger: null,
    });
    consumer.on('message', async (msg) => {
      got.push(msg.body.toString());
    });
    try {
      await consumer.connect();
      await waitUntil(`${channel} delivers ${last}`, () => got.includes(last), { timeoutMs: 20_000 });
    } finally {
      await consumer.close();
    }
    return got;
  }

  logs(): string {
    return [...this.members.map((m) => m.proc.logs()), this.group.logs()].join('\n');
  }

  async cleanup(failed: boolean): Promise<void> {
    if (failed) console.log(this.logs());
    for (const m of this.members.splice(0)) {
      m.proc.signal('SIGCONT');
      m.proc.signal('SIGKILL');
      await m.proc.exited;
    }
    await this.group.killAll();
    await this.etcd?.stop();
    this.etcd = null;
    for (const d of this.dirs.splice(0)) await rm(d, { recursive: true, force: true });
  }
}

export async function status(m: Member): Promise<HaStatus> {
  const res = await fetch(`http://${m.http}/ha`, { signal: AbortSignal.timeout(2_000) });
  return (await res.json()) as HaStatus;
}

/** POST /pub; the status. */
export async function pub(m: Member, topic: string, body: string, timeoutMs = 5_000): Promise<number> {
  const res = await fetch(`http://${m.http}/pub?topic=${topic}`, {
    method: 'POST',
    body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  await res.text();
  return res.status;
}

/** The client address a leader serves on (its latest promotion's). */
export function tcpAddressOf(m: Member): string | undefined {
  const all = [...m.proc.logs().matchAll(/serving on (\S+) after/g)];
  return all[all.length - 1]?.[1];
}
