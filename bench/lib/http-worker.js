/**
 * HTTP load against nsqd's HTTP API, run as a child process forked by bench/run.js (IPC protocol
 * and harness: worker-common.js). Keep-alive throughout.
 *
 * Roles:
 *   http-pub  `clients` concurrent request loops in this process, each one request at a time:
 *             POST /pub?topic=T (one `msgSize` body) or POST /mpub?topic=T&binary=true
 *             (`batchSize` messages) until `stop`. `httpClient`: 'agent' (node:http with
 *             http.Agent({ keepAlive: true })) or 'fetch' (Node's built-in undici fetch).
 *   create    `topicCount` topics × `channelCount` channels (POST /topic/create, /channel/create),
 *             then `msgsPerTopic` messages per topic (one binary /mpub each), `concurrency`
 *             requests at a time; msgs = requests made. Finishes by itself.
 *   scrape    for each of `paths`, `count` sequential GETs; reports latency and size per path.
 *             Finishes by itself.
 */
import http from 'node:http';
import { nowMs } from './util.js';
import { runWorker } from './worker-common.js';

/**
 * @import { HostPort, LatencySummary, ScrapeSummary, WorkerConfig } from './types.js'
 */

/**
 * @typedef {WorkerConfig & { http: HostPort, httpClient?: string, mode: string, clients: number,
 *   topicPrefix: string, topicCount: number, channelCount: number, msgsPerTopic: number,
 *   concurrency: number, paths: string[], count: number }} HttpConfig
 */

/**
 * @typedef {(method: string, path: string, body?: Buffer, keepText?: boolean) => Promise<{ status: number, size: number, text: string }>} Request
 */

/**
 * A binary /mpub body: 4-byte BE count, then per message 4-byte BE size + `msgSize` bytes of 'x'.
 * @param {number} n
 * @param {number} msgSize
 */
function mpubBinaryBody(n, msgSize) {
  const body = Buffer.alloc(4 + n * (4 + msgSize), 'x');
  body.writeUInt32BE(n, 0);
  for (let i = 0; i < n; i++) body.writeUInt32BE(msgSize, 4 + i * (4 + msgSize));
  return body;
}

/**
 * A request function over one keep-alive pool.
 * @param {string} kind 'agent' or 'fetch'
 * @param {HostPort} addr
 * @param {number} maxSockets
 * @returns {Request}
 */
function httpClient(kind, addr, maxSockets) {
  if (kind === 'fetch') {
    const base = `http://${addr.host}:${addr.port}`;
    return async (method, path, body, keepText = false) => {
      const res = await fetch(base + path, { method, body });
      const buf = Buffer.from(await res.arrayBuffer());
      return { status: res.status, size: buf.length, text: keepText || res.status !== 200 ? buf.toString() : '' };
    };
  }
  if (kind !== 'agent') throw new Error(`unknown http client ${kind}`);
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  return (method, path, body, keepText = false) =>
    new Promise((resolve, reject) => {
      const headers = body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : {};
      const req = http.request({ host: addr.host, port: addr.port, method, path, agent, headers }, (res) => {
        /** @type {Buffer[]} */
        const chunks = [];
        let size = 0;
        res.on('data', (c) => {
          size += c.length;
          if (keepText || res.statusCode !== 200) chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, size, text: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
}

/**
 * Nearest rank.
 * @param {number[]} sorted
 * @param {number} p percent
 */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/**
 * @param {number[]} ms
 * @returns {LatencySummary}
 */
function latencySummary(ms) {
  const s = [...ms].sort((a, b) => a - b);
  /** @param {number | null} n */
  const r3 = (n) => (n === null ? null : Math.round(n * 1000) / 1000);
  return {
    n: s.length,
    minMs: r3(s[0] ?? null),
    p50Ms: r3(percentile(s, 50)),
    p99Ms: r3(percentile(s, 99)),
    maxMs: r3(s[s.length - 1] ?? null),
    meanMs: r3(s.length ? s.reduce((a, b) => a + b, 0) / s.length : null),
  };
}

runWorker((/** @type {HttpConfig} */ config, w) => {
  const request = httpClient(
    config.httpClient ?? 'agent',
    config.http,
    Math.max(1, config.clients ?? config.concurrency ?? 1),
  );
  /**
   * @param {{ status: number, text: string }} res
   * @param {string} what
   */
  const expect200 = (res, what) => {
    if (res.status !== 200) throw new Error(`${what} → ${res.status} ${res.text.slice(0, 200)}`);
  };

  if (config.role === 'http-pub') {
    const t = encodeURIComponent(config.topic);
    const mpub = config.mode === 'mpub';
    const path = mpub ? `/mpub?topic=${t}&binary=true` : `/pub?topic=${t}`;
    const n = mpub ? config.batchSize : 1;
    const body = mpub ? mpubBinaryBody(n, config.msgSize) : Buffer.alloc(config.msgSize, 'x');
    let running = false;
    /** @type {Promise<void[]> | null} */
    let loops = null;
    const loop = async () => {
      while (running && !w.finished) {
        const res = await request('POST', path, body);
        expect200(res, `POST ${path}`);
        w.count(n, n * config.msgSize);
      }
    };
    // One request first, so the connection exists (and the path works) before the clock starts.
    return request('POST', path, body).then((res) => {
      expect200(res, `POST ${path}`);
      w.ready();
      return {
        start() {
          running = true;
          loops = Promise.all(Array.from({ length: config.clients }, loop));
          loops.catch((err) => w.fail(err.message));
        },
        async stop() {
          running = false;
          await loops;
          w.finish();
        },
      };
    });
  }

  if (config.role === 'create') {
    const body = mpubBinaryBody(config.msgsPerTopic, config.msgSize);
    const run = async () => {
      /** @type {number[]} */
      const tasks = [];
      for (let i = 0; i < config.topicCount; i++) tasks.push(i);
      let next = 0;
      const worker = async () => {
        while (next < tasks.length && !w.finished) {
          const q = `topic=${encodeURIComponent(`${config.topicPrefix}${tasks[next++]}`)}`;
          let res = await request('POST', `/topic/create?${q}`);
          expect200(res, 'POST /topic/create');
          w.count(1, 0);
          for (let c = 0; c < config.channelCount; c++) {
            res = await request('POST', `/channel/create?${q}&channel=ch${c}`);
            expect200(res, 'POST /channel/create');
            w.count(1, 0);
          }
          if (config.msgsPerTopic > 0) {
            res = await request('POST', `/mpub?${q}&binary=true`, body);
            expect200(res, 'POST /mpub');
            w.count(1, 0);
          }
        }
      };
      await Promise.all(Array.from({ length: config.concurrency }, worker));
      w.stats.stopAt = nowMs();
      w.finish();
    };
    w.ready();
    return {
      start() {
        run().catch((err) => w.fail(err.message));
      },
      stop() {},
    };
  }

  if (config.role === 'scrape') {
    const run = async () => {
      /** @type {ScrapeSummary[]} */
      const out = [];
      for (const path of config.paths) {
        const ms = [];
        const sizes = [];
        for (let i = 0; i < config.count && !w.finished; i++) {
          const t0 = nowMs();
          const res = await request('GET', path);
          ms.push(nowMs() - t0);
          expect200(res, `GET ${path}`);
          sizes.push(res.size);
          w.count(1, res.size);
        }
        out.push({
          path,
          warmupMs: warmupMs[path],
          ...latencySummary(ms),
          bytes: sizes[sizes.length - 1] ?? 0,
          latenciesMs: ms.map((x) => Math.round(x * 1000) / 1000),
        });
      }
      w.stats.stopAt = nowMs();
      w.finish({ scrapes: out });
    };
    // A first request of each kind (untimed) opens the connection and warms the route.
    /** @type {Record<string, number>} */
    const warmupMs = {};
    return (async () => {
      for (const path of config.paths) {
        const t0 = nowMs();
        expect200(await request('GET', path, undefined, false), `GET ${path}`);
        warmupMs[path] = Math.round((nowMs() - t0) * 1000) / 1000;
      }
      w.ready();
      return {
        start() {
          run().catch((err) => w.fail(err.message));
        },
        stop() {},
      };
    })();
  }

  throw new Error(`http-worker: unknown role ${config.role}`);
});
