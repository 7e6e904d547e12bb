import { ClientError, ClientErrorCode, ErrorCode, type Logger, Producer, ProtocolError } from '@nsq-ts/client';
import { CliError } from './args.js';
import type { Context } from './context.js';
import { gather, lookupNodes, lookupTopicProducers, nsqdTcpAddress } from './http.js';

/** Publishes not yet answered before reading more of stdin. */
const MAX_OUTSTANDING = 1_000;
/** Failed lines reported one by one; past this only counted, in the summary. */
const MAX_LINE_REPORTS = 100;

/** `--nsqd-tcp-address`, else the topic's producers (for `pub` every node when it has none), else each nsqd's `/info` tcp_port. */
export async function tcpAddresses(ctx: Context, topic: string, anyNode: boolean): Promise<string[]> {
  const tcp = ctx.args.strings('nsqd-tcp-address');
  if (tcp.length > 0) return tcp;
  if (ctx.lookupds.length > 0) {
    const lookups = [() => lookupTopicProducers(ctx.lookupds, topic, 'tcp_port')];
    if (anyNode) lookups.push(() => lookupNodes(ctx.lookupds));
    for (const lookup of lookups) {
      const found = await lookup();
      if (found.errors.length === ctx.lookupds.length) {
        for (const e of found.errors) ctx.warn(e);
        throw new CliError('no lookupd answered');
      }
      if (found.results.length > 0) return found.results;
    }
    return [];
  }
  const found = await gather(ctx.nsqdHttp, nsqdTcpAddress);
  for (const e of found.errors) ctx.warn(e);
  return found.results;
}

/** The client's reconnect notes, as the command's own informational lines. */
export function clientLogger(ctx: Context): Logger {
  return { warn: (m) => ctx.info(m), error: (m) => ctx.info(m) };
}

/** `--delimiter` with the escapes a shell makes awkward: `\n`, `\r`, `\t`, `\0`, `\\`. */
function delimiterBytes(text: string): Buffer {
  const escapes: Record<string, string> = { n: '\n', r: '\r', t: '\t', '0': '\0', '\\': '\\' };
  const value = text.replace(/\\([nrt0\\])/g, (_, c: string) => escapes[c] as string);
  if (value === '') throw new CliError('--delimiter must not be empty', 2);
  return Buffer.from(value, 'utf8');
}

/** `nsq pub <topic> [msg|-]`: the argument, or one message per `--delimiter` record of stdin. */
export async function pub(ctx: Context): Promise<void> {
  ctx.requireNodes(true);
  const [topic, message = '-'] = ctx.args.positionals;
  const deferMs = ctx.args.number('defer');
  const rate = ctx.args.number('rate');
  if (deferMs < 0) throw new CliError('--defer must be >= 0', 2);
  if (!Number.isInteger(rate) || rate < 0) throw new CliError('--rate must be an integer >= 0', 2);
  const delimiter = delimiterBytes(ctx.args.string('delimiter'));
  const addresses = await tcpAddresses(ctx, topic, true);
  if (addresses.length === 0) throw new CliError('no nsqd to publish to');
  const producer = new Producer({
    nsqdAddresses: addresses,
    dialTimeoutMs: 3_000,
    publishTimeoutMs: 10_000,
    logger: clientLogger(ctx),
  });
  const send = (body: Buffer | string): Promise<void> =>
    deferMs > 0 ? producer.publishDeferred(topic, Math.round(deferMs), body) : producer.publish(topic, body);
  const deferred = deferMs > 0 ? `, deferred ${deferMs} ms` : '';
  try {
    try {
      await producer.connect();
    } catch (err) {
      throw new CliError(`cannot connect to nsqd ${addresses.join(', ')}: ${(err as Error).message}`);
    }
    if (message !== '-') {
      await send(message);
      ctx.info(`published 1 message to ${topic}${deferred}`);
      return;
    }
    const run = await publishRecords(ctx, send, delimiter, rate);
    const failed = run.failed > 0 ? `; ${run.failed} failed (${failedLines(run)})` : '';
    const stopped = run.stoppedAt === null ? '' : `; stopped reading at line ${run.stoppedAt}`;
    const summary = `published ${run.published} of ${run.published + run.failed} message(s) to ${topic}${deferred}`;
    if (run.failed > 0 || run.stoppedAt !== null) ctx.warn(`${summary}${failed}${stopped}`);
    else ctx.info(summary);
  } finally {
    await producer.close();
  }
}

interface PublishRun {
  published: number;
  failed: number;
  failedLines: number[];
  /** The line after which nothing more was read (the connection was lost for good), or null. */
  stoppedAt: number | null;
}

function failedLines(run: PublishRun): string {
  const more = run.failed > run.failedLines.length ? ', …' : '';
  return `line${run.failed === 1 ? '' : 's'} ${run.failedLines.join(', ')}${more}`;
}

/** A refusal of one message rather than of the connection: reported, and publishing goes on. */
function isMessageFailure(err: unknown): boolean {
  if (err instanceof ClientError) return err.code === ClientErrorCode.InvalidArgument;
  if (!(err instanceof ProtocolError)) return false;
  const codes: readonly string[] = [
    ErrorCode.BadMessage,
    ErrorCode.BadBody,
    ErrorCode.PubFailed,
    ErrorCode.MpubFailed,
    ErrorCode.DpubFailed,
    ErrorCode.Invalid,
  ];
  return codes.includes(err.code);
}

/** Records of stdin split at `delimiter` (a trailing `\r` dropped from newline-split ones), numbered from 1. */
async function* records(delimiter: Buffer): AsyncGenerator<{ line: number; body: Buffer }> {
  const crlf = delimiter.length === 1 && delimiter[0] === 0x0a;
  const trim = (b: Buffer): Buffer => (crlf && b.length > 0 && b[b.length - 1] === 0x0d ? b.subarray(0, -1) : b);
  let pending: Buffer = Buffer.alloc(0);
  let line = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    const buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let start = 0;
    for (let i = buf.indexOf(delimiter, start); i !== -1; i = buf.indexOf(delimiter, start)) {
      yield { line: ++line, body: trim(buf.subarray(start, i)) };
      start = i + delimiter.length;
    }
    pending = buf.subarray(start);
  }
  if (pending.length > 0) yield { line: ++line, body: trim(pending) };
}

/** `--rate`: the n-th message leaves no earlier than n/rate seconds after the first; 0 for no limit. */
export function rateDelayMs(rate: number, sent: number, elapsedMs: number): number {
  if (rate <= 0) return 0;
  return Math.max(0, (sent * 1000) / rate - elapsedMs);
}

async function publishRecords(
  ctx: Context,
  send: (body: Buffer) => Promise<void>,
  delimiter: Buffer,
  rate: number,
): Promise<PublishRun> {
  const run: PublishRun = { published: 0, failed: 0, failedLines: [], stoppedAt: null };
  let lastReport = { at: Date.now(), count: 0 };
  const progress = process.stdin.isTTY
    ? null
    : setInterval(() => {
        const now = Date.now();
        const perSecond = ((run.published - lastReport.count) * 1000) / (now - lastReport.at);
        ctx.info(`${run.published} published (${Math.round(perSecond)}/s)`);
        lastReport = { at: now, count: run.published };
      }, 1_000);
  const outstanding = new Set<Promise<void>>();
  let connectionLost = false;
  const startedAt = performance.now();
  let sent = 0;
  try {
    for await (const { line, body } of records(delimiter)) {
      if (body.length === 0) continue;
      const wait = rateDelayMs(rate, sent, performance.now() - startedAt);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      sent++;
      const p = send(body).then(
        () => {
          run.published++;
          outstanding.delete(p);
        },
        (err: Error) => {
          outstanding.delete(p);
          run.failed++;
          if (run.failedLines.length < MAX_LINE_REPORTS) {
            run.failedLines.push(line);
            ctx.warn(`line ${line} not published: ${err.message}`);
          }
          if (!isMessageFailure(err)) connectionLost = true;
        },
      );
      outstanding.add(p);
      if (outstanding.size >= MAX_OUTSTANDING) await Promise.race(outstanding);
      if (connectionLost) {
        run.stoppedAt = line;
        break;
      }
    }
    await Promise.all(outstanding);
  } finally {
    if (progress !== null) clearInterval(progress);
  }
  run.failedLines.sort((a, b) => a - b);
  return run;
}
