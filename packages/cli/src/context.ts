import { parseHostPort } from '@nsq-ts/go-compat';
import type { TopicStats } from '@nsq-ts/protocol';
import { type Args, CliError } from './args.js';
import { lookupTopicProducers, nsqRequest, query } from './http.js';

/** What a running subcommand gets: its parsed arguments and the error channel. */
export class Context {
  /** Set by {@link warn}: the command finishes its work but exits with 1. */
  failed = false;

  constructor(
    readonly command: string,
    readonly args: Args,
  ) {}

  out(line: string): void {
    process.stdout.write(`${line}\n`);
  }

  /** Reports a problem (e.g. one unreachable node) on stderr and marks the run as failed. */
  warn(message: string): void {
    this.failed = true;
    process.stderr.write(`nsq ${this.command}: ${message}\n`);
  }

  /** Informational line on stderr (progress, summaries); does not fail the run. */
  info(message: string): void {
    process.stderr.write(`nsq ${this.command}: ${message}\n`);
  }

  get lookupds(): string[] {
    return this.args.strings('lookupd-http-address');
  }

  get nsqdHttp(): string[] {
    return this.args.strings('nsqd-http-address');
  }

  /** Refuses a command line without any node to talk to, or with an address that is not one. */
  requireNodes(alsoTcp = false): void {
    const tcp = alsoTcp ? this.args.strings('nsqd-tcp-address') : [];
    if (this.lookupds.length + this.nsqdHttp.length + tcp.length === 0) {
      const flags = alsoTcp
        ? '--lookupd-http-address, --nsqd-tcp-address or --nsqd-http-address'
        : '--lookupd-http-address or --nsqd-http-address';
      throw new CliError(`give ${flags}`, 2);
    }
    for (const a of tcp) checkAddress('nsqd-tcp-address', a);
    for (const a of this.lookupds) checkAddress('lookupd-http-address', a.replace(/^https?:\/\//, ''));
    for (const a of this.nsqdHttp) checkAddress('nsqd-http-address', a.replace(/^https?:\/\//, ''));
  }

  /** Its producers per the lookupds (lookupd mode), or the configured nsqds; none answering is fatal. */
  async topicNsqds(topic: string): Promise<string[]> {
    if (this.lookupds.length === 0) return this.nsqdHttp;
    const found = await lookupTopicProducers(this.lookupds, topic, 'http_port');
    for (const e of found.errors) this.warn(e);
    if (found.errors.length === this.lookupds.length) throw new CliError('no lookupd answered');
    return found.results;
  }
}

/** `host:port` (a bracketed IPv6 host allowed), else a bad command line. */
export function checkAddress(flag: string, address: string): void {
  let ok = false;
  try {
    const { port } = parseHostPort(address.replace(/\/+$/, ''));
    ok = Number.isInteger(port) && port > 0 && port < 65536;
  } catch {
    ok = false;
  }
  if (!ok) throw new CliError(`invalid value ${JSON.stringify(address)} for flag -${flag}: not host:port`, 2);
}

/** All topics of one nsqd, or only `topic` (and only `channel` of it), without clients. */
export async function nsqdStats(nsqd: string, topic?: string, channel?: string): Promise<TopicStats[]> {
  const body = await nsqRequest(
    'GET',
    nsqd,
    `/stats${query({ format: 'json', topic, channel, include_clients: 'false' })}`,
  );
  const topics = (body as { topics?: unknown } | null)?.topics;
  const list = Array.isArray(topics) ? (topics as TopicStats[]) : [];
  return topic === undefined ? list : list.filter((t) => t.topic_name === topic);
}
