/**
 * A client "host" for the replica-group tests (test/support/ha-lab.ts): run inside a network
 * namespace, it takes JSON commands on stdin, one a line (`{id, op, …}`), and answers each with
 * `{reply: id, …}` on stdout. The test process cannot reach the namespaces itself, so every HTTP
 * request, publish and consumer of those tests runs here.
 *
 * - `http {url, method?, body?, timeoutMs?}` → `{status, body}` (status 0: no answer).
 * - `consume {topic, channel, lookupd}`: a Consumer discovering through lookupd; counts every
 *   delivery per body.
 * - `produce {topic, prefix, producers, tcp, http, retry, maxPublishAttempts?}`: `producers`
 *   loops publishing unique bodies, the even ones over TCP (our Producer, `tcp` as its host pool),
 *   the odd ones over HTTP (`/pub` on each of `http` until one answers): a loop of its own for
 *   each, so that HTTP publishes show when the group serves again while the Producer may still
 *   be backing off its reconnects. Each publish is classified: `ok`
 *   (OK / 200), `refused` (E_PUB_FAILED / 503: never stored, or stored and marked skipped) or
 *   `indeterminate` (no answer: closed, timed out). With `retry` a body not acknowledged is sent
 *   again until it is (its final class is then ok); without, the next body is new.
 * - `stop` → the history: bodies per class, how many of each, the outages (spans from a failed
 *   publish to the next acknowledgement while none succeeded) and the time of every
 *   acknowledgement per transport, in wall-clock ms.
 * - `received` → `{counts: {body: deliveries}}`.
 *
 * Progress goes out every 250 ms as `{progress: {ok, refused, indeterminate, received, lastOkAt}}`
 * (`lastOkAt`: wall-clock ms of the latest acknowledgement, 0 before the first).
 */
import { createInterface } from 'node:readline';

const { Consumer, Producer, ProtocolError } = await import(process.env.CLIENT_URL);

const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const received = new Map();
const consumers = [];
/** body → 'ok' | 'refused' | 'indeterminate' (the last outcome of its last send). */
const history = new Map();
const outages = [];
const ackTimes = { tcp: [], http: [] };
let outageStart = null;
let producing = null;

function record(body, outcome, via) {
  history.set(body, outcome);
  if (outcome === 'ok') {
    ackTimes[via].push(Date.now());
    if (outageStart !== null) outages.push([outageStart, Date.now()]);
    outageStart = null;
  } else {
    outageStart ??= Date.now();
  }
}

async function http(url, { method = 'GET', body, timeoutMs = 3_000 } = {}) {
  try {
    const res = await fetch(url, { method, body, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: await res.text() };
  } catch (err) {
    return { status: 0, body: String(err?.cause?.code ?? err?.name ?? err) };
  }
}

async function publishHttp(addresses, topic, body) {
  let outcome = 'refused';
  for (const address of addresses) {
    const res = await http(`http://${address}/pub?topic=${topic}`, { method: 'POST', body, timeoutMs: 5_000 });
    if (res.status === 200) return 'ok';
    // A 503 (a follower, or the leader refusing) stored nothing that can be delivered; no answer may have.
    if (res.status !== 503) outcome = 'indeterminate';
  }
  return outcome;
}

async function publishTcp(producer, topic, body) {
  try {
    await producer.publish(topic, body);
    return 'ok';
  } catch (err) {
    return err instanceof ProtocolError && err.code === 'E_PUB_FAILED' ? 'refused' : 'indeterminate';
  }
}

function produce(cmd) {
  const producer = new Producer({
    nsqdAddresses: cmd.tcp,
    publishTimeoutMs: 5_000,
    maxPublishAttempts: cmd.maxPublishAttempts ?? 5,
    reconnectMinDelayMs: 50,
    reconnectMaxDelayMs: 500,
    dialTimeoutMs: 1_000,
    logger: null,
  });
  let stop = false;
  const loops = Array.from({ length: cmd.producers }, async (_, p) => {
    const viaTcp = p % 2 === 0 || cmd.http.length === 0;
    for (let i = 0; !stop; i++) {
      const body = `${cmd.prefix}${p}-${i}`;
      for (;;) {
        const outcome = viaTcp
          ? await publishTcp(producer, cmd.topic, body)
          : await publishHttp(cmd.http, cmd.topic, body);
        record(body, outcome, viaTcp ? 'tcp' : 'http');
        if (outcome === 'ok' || !cmd.retry || stop) break;
        await sleep(20);
      }
      if (history.get(body) !== 'ok') await sleep(20);
    }
  });
  producing = {
    stop: async () => {
      stop = true;
      await Promise.all(loops);
      await producer.close();
    },
  };
}

function summary() {
  const bodies = { ok: [], refused: [], indeterminate: [] };
  for (const [body, outcome] of history) bodies[outcome].push(body);
  return {
    counts: Object.fromEntries(Object.entries(bodies).map(([k, v]) => [k, v.length])),
    bodies,
    outages,
    ackTimes,
  };
}

setInterval(() => {
  const counts = { ok: 0, refused: 0, indeterminate: 0 };
  for (const outcome of history.values()) counts[outcome]++;
  out({
    progress: {
      ...counts,
      received: received.size,
      lastOkAt: Math.max(ackTimes.tcp.at(-1) ?? 0, ackTimes.http.at(-1) ?? 0),
    },
  });
}, 250).unref();

createInterface({ input: process.stdin }).on('line', async (line) => {
  const cmd = JSON.parse(line);
  const reply = (o) => out({ reply: cmd.id, ...o });
  try {
    if (cmd.op === 'http') reply(await http(cmd.url, cmd));
    else if (cmd.op === 'consume') {
      const c = new Consumer({
        topic: cmd.topic,
        channel: cmd.channel,
        lookupdHttpAddresses: cmd.lookupd,
        lookupdPollIntervalMs: 200,
        maxInFlight: 50,
        logger: null,
      });
      c.on('message', async (m) => {
        const b = m.body.toString();
        received.set(b, (received.get(b) ?? 0) + 1);
      });
      consumers.push(c);
      await c.connect();
      reply({});
    } else if (cmd.op === 'produce') {
      produce(cmd);
      reply({});
    } else if (cmd.op === 'stop') {
      await producing?.stop();
      producing = null;
      reply(summary());
    } else if (cmd.op === 'received') reply({ counts: Object.fromEntries(received) });
    else if (cmd.op === 'close') {
      await producing?.stop();
      for (const c of consumers) await c.close();
      reply({});
      process.exit(0);
    } else reply({ error: `unknown op ${cmd.op}` });
  } catch (err) {
    reply({ error: String(err?.stack ?? err) });
  }
});
out({ ready: true });
