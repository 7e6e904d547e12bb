/**
 * A small streaming NSQ V2 client for failure tests that push a lot of messages through real
 * daemons: every frame is decoded as it arrives (nothing is kept per byte, unlike the protocol
 * tests' RawClient), messages go to a callback, and commands that nsqd answers (IDENTIFY, SUB,
 * PUB, MPUB, DPUB) return a promise of their answer, in order.
 *
 * - Heartbeats are answered with NOP and never taken for an answer.
 * - Non-fatal error frames that answer nothing (E_FIN_FAILED, E_REQ_FAILED, E_TOUCH_FAILED) are
 *   collected in `errors`; any other error frame rejects the oldest pending command.
 * - When the server closes the connection (after a fatal error, or because it died) every
 *   pending command is rejected; `closed` resolves.
 * - Commands written while a received chunk is being handled (FINs from the message callback)
 *   are corked into one write per chunk.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  type ChannelStats,
  decodeMessage,
  encodeCommand,
  encodeMpubBody,
  FrameDecoder,
  FrameType,
  HEARTBEAT,
  MAGIC_V2,
  type StatsSnapshot,
  type TopicStats,
} from '@nsq-ts/protocol';

export interface WireMessage {
  /** 16 hex characters, echoed in FIN/REQ/TOUCH. */
  id: string;
  attempts: number;
  /** A view of the received chunk: copy it to keep it past the callback. */
  body: Buffer;
  /** `performance.now()` when the frame was decoded. */
  receivedAt: number;
}

interface Pending {
  what: string;
  resolve: (data: Buffer) => void;
  reject: (err: Error) => void;
}

/** Error codes nsqd sends on its own, not as the answer to a command that expects one. */
const UNSOLICITED_ERRORS = /^E_(FIN|REQ|TOUCH)_FAILED\b/;

export class WireClient {
  private readonly decoder = new FrameDecoder();
  private readonly pending: Pending[] = [];
  private closedFlag = false;
  /** Resolves once the connection is closed (by either side), with the reason if one is known. */
  readonly closed: Promise<string>;
  private markClosed!: (why: string) => void;
  /** Non-fatal error frames that answered nothing (E_FIN_FAILED ...). */
  readonly errors: string[] = [];
  /** The first fatal error frame received, if any. */
  fatalError: string | null = null;
  onMessage: ((msg: WireMessage) => void) | null = null;

  private constructor(readonly socket: Socket) {
    this.closed = new Promise((resolve) => {
      this.markClosed = resolve;
    });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => this.onClose('connection closed'));
  }

  /** Connects to `host:port` and sends the V2 magic. */
  static async connect(address: string, timeoutMs = 5_000): Promise<WireClient> {
    const colon = address.lastIndexOf(':');
    const socket = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connecting to ${address} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    const client = new WireClient(socket);
    socket.write(MAGIC_V2);
    return client;
  }

  get isClosed(): boolean {
    return this.closedFlag;
  }

  private onData(chunk: Buffer): void {
    const socket = this.socket;
    socket.cork();
    try {
      this.decoder.push(chunk, (type, data) => this.onFrame(type, data));
    } finally {
      socket.uncork();
    }
  }

  private onFrame(type: FrameType, data: Buffer): void {
    if (type === FrameType.Message) {
      const m = decodeMessage(data);
      this.onMessage?.({ id: m.id, attempts: m.attempts, body: m.body, receivedAt: performance.now() });
      return;
    }
    if (type === FrameType.Response) {
      if (data.length === HEARTBEAT.length && data.toString('latin1') === HEARTBEAT) {
        this.write(encodeCommand('NOP'));
        return;
      }
      this.pending.shift()?.resolve(Buffer.from(data));
      return;
    }
    const text = data.toString('utf8');
    if (UNSOLICITED_ERRORS.test(text)) {
      this.errors.push(text);
      return;
    }
    this.fatalError ??= text;
    const p = this.pending.shift();
    if (p !== undefined) p.reject(new Error(`${p.what}: ${text}`));
  }

  private onClose(why: string): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    const reason = this.fatalError === null ? why : `${why} after ${this.fatalError}`;
    for (const p of this.pending.splice(0)) p.reject(new Error(`${p.what}: ${reason}`));
    this.markClosed(reason);
  }

  write(data: Buffer): void {
    if (!this.closedFlag) this.socket.write(data);
  }

  /** Sends a command nsqd answers, and resolves with the answer (rejects on an error frame). */
  request(what: string, command: Buffer): Promise<Buffer> {
    if (this.closedFlag) return Promise.reject(new Error(`${what}: connection closed`));
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.push({ what, resolve, reject });
      this.socket.write(command);
    });
  }

  identify(body: Record<string, unknown>): Promise<Buffer> {
    return this.request('IDENTIFY', encodeCommand('IDENTIFY', [], JSON.stringify(body)));
  }

  async sub(topic: string, channel: string): Promise<void> {
    await this.request(`SUB ${topic} ${channel}`, encodeCommand('SUB', [topic, channel]));
  }

  async pub(topic: string, body: Buffer | string): Promise<void> {
    await this.request(`PUB ${topic}`, encodeCommand('PUB', [topic], body));
  }

  async mpub(topic: string, bodies: readonly Buffer[]): Promise<void> {
    await this.request(`MPUB ${topic}`, encodeCommand('MPUB', [topic], encodeMpubBody(bodies)));
  }

  async dpub(topic: string, deferMs: number, body: Buffer | string): Promise<void> {
    await this.request(`DPUB ${topic}`, encodeCommand('DPUB', [topic, String(deferMs)], body));
  }

  rdy(n: number): void {
    this.write(encodeCommand('RDY', [String(n)]));
  }

  fin(id: string): void {
    this.write(encodeCommand('FIN', [id]));
  }

  req(id: string, delayMs: number): void {
    this.write(encodeCommand('REQ', [id, String(delayMs)]));
  }

  touch(id: string): void {
    this.write(encodeCommand('TOUCH', [id]));
  }

  /** Closes the socket at once (no CLS): in-flight messages stay with nsqd until they time out. */
  destroy(): void {
    this.socket.destroy();
    this.onClose('closed by the test');
  }
}

/** `GET`/`POST` against a daemon's HTTP address; never throws on a status. */
export async function http(
  address: string,
  path: string,
  options: { method?: string; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://${address}${path}`, {
    method: options.method ?? 'GET',
    body: options.body,
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  return { status: res.status, text: await res.text() };
}

/** `POST` that must answer 200. */
export async function httpPost(address: string, path: string, body?: string | Buffer): Promise<string> {
  const r = await http(address, path, { method: 'POST', body });
  if (r.status !== 200) throw new Error(`POST ${path}: ${r.status} ${r.text}`);
  return r.text;
}

/** `GET` that must answer 200 with JSON. */
export async function httpJson<T>(address: string, path: string): Promise<T> {
  const r = await http(address, path);
  if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${r.text}`);
  return JSON.parse(r.text) as T;
}

/** `/stats?format=json` (optionally one topic). */
export async function statsJson(address: string, topic?: string): Promise<StatsSnapshot> {
  const q = topic === undefined ? '' : `&topic=${encodeURIComponent(topic)}`;
  const r = await http(address, `/stats?format=json&include_clients=false${q}`);
  if (r.status !== 200) throw new Error(`/stats: ${r.status} ${r.text}`);
  return JSON.parse(r.text) as StatsSnapshot;
}

/** One topic's stats; throws when the topic does not exist. */
export async function topicStats(address: string, topic: string): Promise<TopicStats> {
  const s = await statsJson(address, topic);
  const t = s.topics?.find((x) => x.topic_name === topic);
  if (t === undefined) throw new Error(`topic ${topic} is not in /stats`);
  return t;
}

/** One channel's stats; throws when it does not exist. */
export async function channelStats(address: string, topic: string, channel: string): Promise<ChannelStats> {
  const t = await topicStats(address, topic);
  const c = t.channels.find((x) => x.channel_name === channel);
  if (c === undefined) throw new Error(`channel ${topic}/${channel} is not in /stats`);
  return c;
}
