/**
 * The soak scenario's generators (bench/lib/soak.js), forked by bench/run.js (IPC protocol and
 * harness: worker-common.js). Every body starts with the publisher's index
 * (u16 BE), its sequence number (u32 BE) and the marker 'SK', so the consumers can tell exactly
 * which messages they got, whatever ids the broker gives them. Both roles outlive the broker:
 * when the connection closes (a restart) they reconnect every 100 ms until it is back.
 *
 * Roles:
 *   soak-pub  offers `rate` msgs/s, paced by a 10 ms timer: MPUBs of up to `batchSize`, every
 *             10th command a single PUB and every 20th a DPUB (deferred 0.5–3 s). Answers are
 *             matched FIFO. Sequence numbers whose command had no answer when the connection
 *             closed are *uncertain* (stored or not); those answered by an error frame *failed*.
 *             While disconnected (or with a second's worth unanswered) it does not catch up: the
 *             offer it missed is counted as `skipped`. Result: `nextSeq`, `uncertain`, `failed`
 *             (lists of [from, to) ranges) — acknowledged = [0, nextSeq) minus those.
 *   soak-sub  SUB, `RDY rdy`; per first delivery (attempts 1), decided by a hash of
 *             (publisher, seq): `holdPermille` ‰ are never answered (they time out after the
 *             broker's --msg-timeout), `reqPermille` ‰ are REQ'd with a delay of 0–`reqMaxDelayMs`,
 *             the rest are FINed; every redelivery (attempts > 1) is FINed. A message FINed again
 *             after an earlier FIN is a duplicate. `pause` / `resume` (IPC) set RDY 0 / RDY rdy.
 *             Result: per publisher a bitmap (base64) of the sequence numbers it FINed, and counts.
 */
import net from 'node:net';
import { encodeCommand, encodeMpubBody, FrameDecoder, FrameType } from '@nsq-ts/protocol';
import { greet, isHeartbeat, NOP, runWorker } from './worker-common.js';

/**
 * @import { Socket } from 'node:net'
 * @import { SeqRange, WorkerConfig, WorkerHandle } from './types.js'
 * @import { OnFrame } from './worker-common.js'
 */

/**
 * @typedef {WorkerConfig & { index: number, rate: number, holdPermille: number, reqPermille: number,
 *   reqMaxDelayMs: number }} SoakConfig
 */

const RECONNECT_MS = 100;
const PACE_MS = 10;
const MARK0 = 0x53; // 'S'
const MARK1 = 0x4b; // 'K'
const BODY_HEADER = 8;
const MSG_HEADER = 26; // timestamp 8, attempts 2, id 16

/**
 * The soak's decision for a first delivery, the same in every consumer: 0 … 999.
 * @param {number} pub
 * @param {number} seq
 */
function soakHash(pub, seq) {
  let h = Math.imul(seq ^ (pub << 24), 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca77);
  h ^= h >>> 13;
  return (h >>> 0) % 1000;
}

/**
 * One connection that comes back: `onFrame(type, data)` sees every frame; `onOpen(socket)` runs
 * once magic and IDENTIFY are sent, `afterChunk()` after each chunk read is decoded, `onLost()`
 * when it closes (then it reconnects, unless `stop()` was called). Counts reconnects.
 * @param {SoakConfig} config
 * @param {WorkerHandle} w
 * @param {{ onOpen: (socket: Socket) => void, onFrame: OnFrame, onLost: () => void, afterChunk?: () => void }} handlers
 */
function reconnecting(config, w, { onOpen, onFrame, onLost, afterChunk = () => {} }) {
  /** @type {Socket | null} */
  let socket = null;
  let stopped = false;
  const self = {
    reconnects: 0,
    connected: false,
    get socket() {
      return socket;
    },
    stop() {
      stopped = true;
    },
  };
  const connect = () => {
    const s = net.connect({ host: config.host, port: config.port, noDelay: true });
    const decoder = new FrameDecoder();
    socket = s;
    s.on('connect', () => {
      self.connected = true;
      greet(s, config);
      onOpen(s);
    });
    s.on('data', (chunk) => {
      try {
        decoder.push(chunk, onFrame);
      } catch (err) {
        w.log(`bad frame stream: ${/** @type {Error} */ (err).message}`);
        s.destroy();
        return;
      }
      afterChunk();
    });
    s.on('error', () => {});
    s.on('close', () => {
      const was = self.connected;
      self.connected = false;
      if (socket === s) socket = null;
      if (was) onLost();
      if (stopped || w.finished) return;
      self.reconnects++;
      setTimeout(connect, RECONNECT_MS);
    });
  };
  connect();
  return self;
}

/** A growable bit set of sequence numbers. */
class SeqBits {
  constructor() {
    this.bytes = new Uint8Array(1 << 16);
  }
  /** @param {number} seq */
  has(seq) {
    const i = seq >>> 3;
    return i < this.bytes.length && (this.bytes[i] & (1 << (seq & 7))) !== 0;
  }
  /** @param {number} seq */
  add(seq) {
    const i = seq >>> 3;
    if (i >= this.bytes.length) {
      let n = this.bytes.length;
      while (n <= i) n *= 2;
      const next = new Uint8Array(n);
      next.set(this.bytes);
      this.bytes = next;
    }
    this.bytes[i] |= 1 << (seq & 7);
  }
  toBase64() {
    let end = this.bytes.length;
    while (end > 0 && this.bytes[end - 1] === 0) end--;
    return Buffer.from(this.bytes.buffer, 0, end).toString('base64');
  }
}

runWorker((/** @type {SoakConfig} */ config, w) => {
  const stats = w.stats;

  // ---- soak-pub -------------------------------------------------------------------------------
  if (config.role === 'soak-pub') {
    const size = Math.max(BODY_HEADER, config.msgSize);
    /** @param {number} seq */
    const body = (seq) => {
      const b = Buffer.alloc(size, 'x');
      b.writeUInt16BE(config.index, 0);
      b.writeUInt32BE(seq, 2);
      b[6] = MARK0;
      b[7] = MARK1;
      return b;
    };
    /** @type {{ from: number, n: number }[]} commands sent and not answered, oldest first */
    let outstanding = [];
    /** Messages in `outstanding`. */
    let unanswered = 0;
    /** @type {SeqRange[]} */
    const uncertain = [];
    /** @type {SeqRange[]} */
    const failed = [];
    const commands = { mpub: 0, pub: 0, dpub: 0 };
    let seq = 0;
    let cmdCount = 0;
    let identified = false;
    let everReady = false;
    let startedAt = 0;
    let offered = 0;
    let skipped = 0;
    /** @type {NodeJS.Timeout | undefined} */
    let timer;
    let stopping = false;
    const maxUnanswered = Math.max(config.batchSize * 4, config.rate);

    const maybeFinish = () => {
      if (!stopping || outstanding.length > 0 || w.finished) return;
      conn.stop();
      conn.socket?.end();
      w.finish({ nextSeq: seq, uncertain, failed, commands, skipped, reconnects: conn.reconnects });
    };
    const conn = reconnecting(config, w, {
      onOpen: () => {
        identified = false;
      },
      onLost: () => {
        for (const c of outstanding) pushRange(uncertain, c.from, c.from + c.n);
        outstanding = [];
        unanswered = 0;
        maybeFinish();
      },
      onFrame: (type, data) => {
        if (type === FrameType.Error) {
          const c = outstanding.shift();
          if (c !== undefined) {
            unanswered -= c.n;
            pushRange(failed, c.from, c.from + c.n);
          }
          stats.softErrors++;
          if (stats.softErrors <= 5) w.log(`error frame: ${data.toString('latin1')}`);
          return;
        }
        if (isHeartbeat(data)) {
          stats.heartbeats++;
          conn.socket?.write(NOP);
          return;
        }
        if (!identified) {
          identified = true;
          if (!everReady) {
            everReady = true;
            w.ready();
          }
          return;
        }
        const c = outstanding.shift();
        if (c === undefined || data.toString('latin1') !== 'OK') {
          w.fail(`unexpected response ${JSON.stringify(data.toString('latin1').slice(0, 100))}`);
          return;
        }
        unanswered -= c.n;
        w.count(c.n, c.n * size);
        maybeFinish();
      },
    });

    /**
     * @param {'mpub' | 'pub' | 'dpub'} kind
     * @param {number} n
     */
    const send = (kind, n) => {
      const from = seq;
      let cmd;
      if (kind === 'mpub') {
        const bodies = [];
        for (let i = 0; i < n; i++) bodies.push(body(from + i));
        cmd = encodeCommand('MPUB', [config.topic], encodeMpubBody(bodies));
      } else if (kind === 'dpub') {
        cmd = encodeCommand('DPUB', [config.topic, String(500 + (from % 2500))], body(from));
      } else {
        cmd = encodeCommand('PUB', [config.topic], body(from));
      }
      seq += n;
      commands[kind]++;
      outstanding.push({ from, n });
      unanswered += n;
      conn.socket?.write(cmd);
    };

    const pace = () => {
      if (stopping) return;
      const due = Math.floor((config.rate * (Date.now() - startedAt)) / 1000) - offered;
      const canSend = conn.connected && identified;
      // No catching up after a gap: at most 100 ms worth at once.
      const cap = canSend ? Math.max(config.batchSize, Math.ceil(config.rate / 10)) : 0;
      let left = due;
      if (left > cap) {
        skipped += left - cap;
        offered += left - cap;
        left = cap;
      }
      while (left > 0 && unanswered < maxUnanswered) {
        cmdCount++;
        /** @type {'mpub' | 'pub' | 'dpub'} */
        const kind = cmdCount % 20 === 0 ? 'dpub' : cmdCount % 10 === 0 ? 'pub' : 'mpub';
        const n = kind === 'mpub' ? Math.min(config.batchSize, left) : 1;
        send(kind, n);
        offered += n;
        left -= n;
      }
      if (left > 0) {
        skipped += left;
        offered += left;
      }
    };

    return {
      start() {
        startedAt = Date.now();
        timer = setInterval(pace, PACE_MS);
      },
      stop() {
        stopping = true;
        clearInterval(timer);
        maybeFinish();
      },
    };
  }

  // ---- soak-sub -------------------------------------------------------------------------------
  if (config.role === 'soak-sub') {
    /** @type {Map<number, SeqBits>} */
    const bits = new Map();
    const c = {
      deliveries: 0,
      redeliveries: 0,
      duplicates: 0,
      requeued: 0,
      held: 0,
      heldRedelivered: 0,
      bad: 0,
      maxAttempts: 0,
    };
    let phase = 'identify';
    let started = false;
    let paused = false;
    let stopping = false;
    /** @type {string[]} */
    let out = [];
    const rdy = () => encodeCommand('RDY', [String(paused || stopping ? 0 : config.rdy)]);
    /** @param {number} pub */
    const bitsOf = (pub) => {
      let b = bits.get(pub);
      if (b === undefined) {
        b = new SeqBits();
        bits.set(pub, b);
      }
      return b;
    };
    const finishNow = () => {
      if (w.finished) return;
      conn.stop();
      conn.socket?.end();
      /** @type {Record<number, string>} */
      const bitmaps = {};
      for (const [pub, b] of bits) bitmaps[pub] = b.toBase64();
      w.finish({ counts: c, bitmaps, reconnects: conn.reconnects });
    };

    /** @param {Buffer} data */
    const onMessage = (data) => {
      c.deliveries++;
      const attempts = data.readUInt16BE(8);
      if (attempts > c.maxAttempts) c.maxAttempts = attempts;
      const id = data.toString('latin1', 10, 26);
      const b = data.subarray(MSG_HEADER);
      if (b.length < BODY_HEADER || b[6] !== MARK0 || b[7] !== MARK1) {
        c.bad++;
        out.push(`FIN ${id}\n`);
        return;
      }
      const pub = b.readUInt16BE(0);
      const seq = b.readUInt32BE(2);
      const h = soakHash(pub, seq);
      if (attempts > 1) {
        c.redeliveries++;
        if (h < config.holdPermille) c.heldRedelivered++;
      } else if (h < config.holdPermille) {
        c.held++;
        return;
      } else if (h < config.holdPermille + config.reqPermille) {
        c.requeued++;
        const delay = config.reqMaxDelayMs > 0 ? (seq * 7919) % (config.reqMaxDelayMs + 1) : 0;
        out.push(`REQ ${id} ${delay}\n`);
        return;
      }
      const set = bitsOf(pub);
      if (set.has(seq)) c.duplicates++;
      else {
        set.add(seq);
        w.count(1, b.length);
      }
      out.push(`FIN ${id}\n`);
    };

    // One write per chunk of frames read: FINs, REQs and NOPs.
    const flush = () => {
      if (out.length === 0) return;
      const text = out.join('');
      out = [];
      conn.socket?.write(text, 'latin1');
    };
    const conn = reconnecting(config, w, {
      afterChunk: flush,
      onOpen: () => {
        phase = 'identify';
      },
      onLost: () => {
        out = [];
        if (stopping) finishNow();
      },
      onFrame: (type, data) => {
        if (type === FrameType.Message) {
          onMessage(data);
          return;
        }
        if (type === FrameType.Error) {
          stats.softErrors++;
          if (stats.softErrors <= 5) w.log(`error frame: ${data.toString('latin1')}`);
          return;
        }
        if (isHeartbeat(data)) {
          stats.heartbeats++;
          out.push('NOP\n');
          return;
        }
        const text = data.toString('latin1');
        if (phase === 'identify') {
          phase = 'sub';
          conn.socket?.write(encodeCommand('SUB', [config.topic, config.channel]));
        } else if (phase === 'sub') {
          if (text !== 'OK') {
            w.fail(`unexpected response to SUB: ${text.slice(0, 200)}`);
            return;
          }
          phase = 'subscribed';
          if (!started) w.ready();
          else conn.socket?.write(rdy());
        } else if (text === 'CLOSE_WAIT') {
          finishNow();
        }
      },
    });
    return {
      start() {
        started = true;
        if (phase === 'subscribed') conn.socket?.write(rdy());
      },
      control(msg) {
        if (msg.type === 'pause' || msg.type === 'resume') {
          paused = msg.type === 'pause';
          if (phase === 'subscribed') conn.socket?.write(rdy());
        }
      },
      stop() {
        stopping = true;
        flush();
        if (phase === 'subscribed' && conn.connected) conn.socket?.write(encodeCommand('CLS'));
        else finishNow();
      },
    };
  }

  throw new Error(`unknown soak role ${config.role}`);
});

/**
 * Appends [from, to) to a list of ranges, merging with the last one when adjacent.
 * @param {SeqRange[]} ranges
 * @param {number} from
 * @param {number} to
 */
function pushRange(ranges, from, to) {
  const last = ranges[ranges.length - 1];
  if (last !== undefined && last[1] === from) last[1] = to;
  else ranges.push([from, to]);
}
