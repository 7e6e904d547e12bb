import { goQuote, parseBase10 } from '@nsq-ts/go-compat';
import {
  CLOSE_WAIT_FRAME,
  type Command,
  type CommandHandler,
  decodeIdentifyBody,
  ErrorCode,
  encodeErrorFrame,
  encodeResponse,
  finCommand,
  type IdentifyRequest,
  type IdentifyResponse,
  isValidChannelName,
  isValidTopicName,
  MESSAGE_ID_LENGTH,
  type MpubMessages,
  OK_FRAME,
  ProtocolError,
} from '@nsq-ts/protocol';
import type { AuthState } from '../auth/auth-client.js';
import type { Channel } from '../channel.js';
import type { NsqdOptions } from '../options.js';
import { TopicFullError } from '../topic.js';
import { OutcomeUnknownError } from '../topic-store.js';
import { VERSION } from '../version.js';
import { ClientState, type ClientV2 } from './client-v2.js';

function fatal(code: ErrorCode, description: string): ProtocolError {
  return new ProtocolError(code, description, true);
}

/** A wait whose command needs no re-run when decoding resumes. */
const DONE = (): boolean => true;

/** Commands decoded while earlier publishes wait for their answers; any other waits until they are written. */
function pipelines(name: string): boolean {
  return name === 'PUB' || name === 'MPUB' || name === 'DPUB' || name === 'NOP';
}

/**
 * Protocol V2's commands as nsqd's protocol_v2.go: NSQ's checks, order and error texts. A body command's
 * handler runs twice: with `line` true once its line is in (nsqd checks params before the body), then with it.
 */
export class ProtocolV2 implements CommandHandler {
  private readonly options: NsqdOptions;

  constructor(private readonly client: ClientV2) {
    this.options = client.host.options;
  }

  private readonly writeOk = (): boolean => {
    this.client.writeFrame(OK_FRAME);
    return true;
  };

  onLineTooLong(): void {
    const c = this.client;
    // bufio.Reader fails on a line over its 16 KiB buffer; nsqd drops the connection silently (after the
    // answers of what it read before).
    c.answers.ready(() => {
      c.host.logger.error(`client(${c.remoteAddress}) command line too long`);
      c.close();
      return false;
    });
    if (c.answers.pending) c.waitForAnswers(true, DONE);
  }

  onBodyCommandLine(cmd: Command): boolean {
    const c = this.client;
    if (c.answers.pending && !pipelines(cmd.name)) {
      c.waitForAnswers(true, () => this.onBodyCommandLine(cmd));
      return false;
    }
    try {
      if (c.tlsGate && cmd.name !== 'IDENTIFY') refuseWithoutTls(cmd);
      this.exec(cmd, true);
      if (c.suspended) {
        c.suspend(() => this.onBodyCommandLine(cmd));
        return false;
      }
      return true;
    } catch (err) {
      return this.fail(err);
    }
  }

  onCommand(cmd: Command): boolean {
    const c = this.client;
    c.commandSeen = true;
    if (c.answers.pending && !pipelines(cmd.name)) {
      c.waitForAnswers(true, () => this.onCommand(cmd));
      return false;
    }
    try {
      // A body command met the TLS gate at its line already.
      if (c.tlsGate && cmd.body === null && cmd.name !== 'IDENTIFY') refuseWithoutTls(cmd);
      this.exec(cmd, false);
      if (c.suspended) c.suspend(() => this.onCommand(cmd));
      return c.decoding;
    } catch (err) {
      return this.fail(err);
    }
  }

  /** Fast FIN from the input bytes; anything else (errors too) takes the general path, where a rerun is harmless. */
  onFin(buf: Buffer, at: number): boolean {
    const c = this.client;
    const channel = c.channel;
    if (
      c.tlsGate ||
      channel === null ||
      (c.state !== ClientState.Subscribed && c.state !== ClientState.Closing) ||
      channel.finishAt(buf, at, c) !== null
    ) {
      return this.onCommand(finCommand(buf, at));
    }
    c.commandSeen = true;
    c.finished();
    return c.decoding;
  }

  /** nsqd's Exec: the one dispatch, commonest commands first. */
  private exec(cmd: Command, line: boolean): void {
    switch (cmd.name) {
      case 'FIN':
        this.FIN(cmd.params);
        return;
      case 'RDY':
        this.RDY(cmd.params);
        return;
      case 'REQ':
        this.REQ(cmd.params);
        return;
      case 'PUB':
        this.PUB(cmd, line);
        return;
      case 'MPUB':
        this.MPUB(cmd, line);
        return;
      case 'DPUB':
        this.DPUB(cmd, line);
        return;
      case 'NOP':
        return;
      case 'TOUCH':
        this.TOUCH(cmd.params);
        return;
      case 'SUB':
        this.SUB(cmd.params);
        return;
      case 'CLS':
        this.CLS();
        return;
      case 'IDENTIFY':
        this.IDENTIFY(cmd, line);
        return;
      case 'AUTH':
        this.AUTH(cmd, line);
        return;
      default:
        throw fatal(ErrorCode.Invalid, `invalid command ${cmd.name}`);
    }
  }

  private IDENTIFY(cmd: Command, line: boolean): void {
    const c = this.client;
    if (line) {
      if (c.state !== ClientState.Init) throw fatal(ErrorCode.Invalid, 'cannot IDENTIFY in current state');
      return;
    }
    const body = this.readBody(cmd, ErrorCode.BadBody, 'IDENTIFY', 'body', true);
    let request: IdentifyRequest;
    try {
      request = decodeIdentifyBody(body);
    } catch {
      throw fatal(ErrorCode.BadBody, 'IDENTIFY failed to decode JSON body');
    }
    const invalid = c.identify(request);
    if (invalid !== null) throw fatal(ErrorCode.BadBody, `IDENTIFY ${invalid}`);
    if (!request.feature_negotiation) {
      c.writeFrame(OK_FRAME);
      return;
    }
    const o = this.options;
    const tls = request.tls_v1 && c.host.tls !== null && c.tlsSocket === null;
    const deflate = request.deflate && o.deflate && !c.deflate && !c.snappy;
    const snappy = request.snappy && o.snappy && !c.deflate && !c.snappy;
    // The client's level counts only when deflate is negotiated; 6 is reported otherwise.
    let deflateLevel = 6;
    if (deflate && request.deflate_level > 0) deflateLevel = request.deflate_level;
    deflateLevel = Math.min(deflateLevel, o.maxDeflateLevel);
    if (deflate && snappy) {
      throw fatal(ErrorCode.IdentifyFailed, 'cannot enable both deflate and snappy compression');
    }
    const reply: IdentifyResponse = {
      max_rdy_count: o.maxRdyCount,
      version: VERSION,
      max_msg_timeout: o.maxMsgTimeoutMs,
      msg_timeout: c.msgTimeoutMs,
      tls_v1: tls,
      deflate,
      deflate_level: deflateLevel,
      max_deflate_level: o.maxDeflateLevel,
      snappy,
      sample_rate: c.sampleRate,
      auth_required: c.auth.enabled,
      output_buffer_size: c.outputBufferSize,
      output_buffer_timeout: c.outputBufferTimeoutMs,
      max_msg_size: o.maxMsgSize,
      max_body_size: o.maxBodySize,
    };
    c.writeFrame(encodeResponse(Buffer.from(JSON.stringify(reply))));
    if (tls || deflate || snappy) {
      // Decoding stops after this command; the layers switch at the next byte (transport.ts).
      c.transport.pending = { tls, compression: snappy ? 'snappy' : deflate ? 'deflate' : null, deflateLevel };
    }
  }

  private AUTH(cmd: Command, line: boolean): void {
    const c = this.client;
    if (line) {
      if (c.state !== ClientState.Init) throw fatal(ErrorCode.Invalid, 'cannot AUTH in current state');
      if (cmd.params.length !== 0) throw fatal(ErrorCode.Invalid, 'AUTH invalid number of parameters');
      return;
    }
    const body = this.readBody(cmd, ErrorCode.BadBody, 'AUTH', 'body', true);
    const current = c.auth.state;
    if (current !== null && current.authorizations.length > 0) throw fatal(ErrorCode.Invalid, 'AUTH already set');
    if (!c.auth.enabled) throw fatal(ErrorCode.AuthDisabled, 'AUTH disabled');
    this.queryAuth(body.toString('utf8'), (state) => {
      c.auth.state = state;
      if (state.authorizations.length === 0) {
        throw fatal(ErrorCode.Unauthorized, 'AUTH no authorizations found');
      }
      const reply = {
        identity: state.identity,
        identity_url: state.identityUrl,
        permission_count: state.authorizations.length,
      };
      c.writeFrame(encodeResponse(Buffer.from(JSON.stringify(reply))));
    });
    // Nothing to retry: the reply is written when the auth server answers.
    c.suspend(DONE);
  }

  private SUB(p: string[]): void {
    const c = this.client;
    if (c.state !== ClientState.Init) throw fatal(ErrorCode.Invalid, 'cannot SUB in current state');
    if (c.heartbeatIntervalMs <= 0) throw fatal(ErrorCode.Invalid, 'cannot SUB with heartbeats disabled');
    if (p.length < 2) throw fatal(ErrorCode.Invalid, 'SUB insufficient number of parameters');
    const topicName = p[0] as string;
    const channelName = p[1] as string;
    if (!isValidTopicName(topicName)) {
      throw fatal(ErrorCode.BadTopic, `SUB topic name ${goQuote(topicName)} is not valid`);
    }
    if (!isValidChannelName(channelName)) {
      throw fatal(ErrorCode.BadChannel, `SUB channel name ${goQuote(channelName)} is not valid`);
    }
    if (!this.authorize('SUB', 'subscribe', topicName, channelName)) return;
    const channel = c.host.getTopic(topicName).getChannel(channelName);
    const max = this.options.maxChannelConsumers;
    if (max !== 0 && channel.consumers.length >= max) {
      throw fatal(ErrorCode.SubFailed, `SUB failed consumers for ${topicName}:${channelName} exceeds limit of ${max}`);
    }
    c.channel = channel;
    c.state = ClientState.Subscribed;
    channel.addConsumer(c);
    c.writeFrame(OK_FRAME);
  }

  private RDY(p: string[]): void {
    const c = this.client;
    if (c.state === ClientState.Closing) return; // ignored after CLS
    if (c.state !== ClientState.Subscribed) throw fatal(ErrorCode.Invalid, 'cannot RDY in current state');
    let count = 1;
    if (p.length > 0) {
      const parsed = parseBase10(p[0] as string);
      if (parsed === null) throw fatal(ErrorCode.Invalid, `RDY could not parse count ${p[0]}`);
      count = parsed;
    }
    if (count < 0 || count > this.options.maxRdyCount) {
      throw fatal(ErrorCode.Invalid, `RDY count ${count} out of range 0-${this.options.maxRdyCount}`);
    }
    c.rdy = count;
    c.channel?.schedule();
  }

  private FIN(p: string[]): void {
    const id = this.messageId('FIN', p, 1);
    const err = (this.client.channel as Channel).finish(id, this.client);
    if (err !== null) throw new ProtocolError(ErrorCode.FinFailed, `FIN ${id} failed ${err}`, false);
    this.client.finished();
  }

  private REQ(p: string[]): void {
    const id = this.messageId('REQ', p, 2);
    const parsed = parseBase10(p[1] as string);
    if (parsed === null) throw fatal(ErrorCode.Invalid, `REQ could not parse timeout ${p[1]}`);
    // Clamped, not refused (nsq-spec §2.6).
    const delayMs = Math.max(0, Math.min(parsed, this.options.maxReqTimeoutMs));
    const err = (this.client.channel as Channel).requeue(id, this.client, delayMs);
    if (err !== null) throw new ProtocolError(ErrorCode.ReqFailed, `REQ ${id} failed ${err}`, false);
    this.client.requeued();
  }

  private TOUCH(p: string[]): void {
    const id = this.messageId('TOUCH', p, 1);
    const err = (this.client.channel as Channel).touch(id, this.client);
    if (err !== null) throw new ProtocolError(ErrorCode.TouchFailed, `TOUCH ${id} failed ${err}`, false);
  }

  private CLS(): void {
    const c = this.client;
    if (c.state !== ClientState.Subscribed) throw fatal(ErrorCode.Invalid, 'cannot CLS in current state');
    c.state = ClientState.Closing;
    c.rdy = 0;
    c.writeFrame(CLOSE_WAIT_FRAME);
  }

  private PUB(cmd: Command, line: boolean): void {
    const p = cmd.params;
    if (line) {
      if (p.length < 1) throw fatal(ErrorCode.Invalid, 'PUB insufficient number of parameters');
      if (!isValidTopicName(p[0] as string)) {
        throw fatal(ErrorCode.BadTopic, `PUB topic name ${goQuote(p[0] as string)} is not valid`);
      }
      return;
    }
    const body = this.readBody(cmd, ErrorCode.BadMessage, 'PUB', 'message body', false);
    const topicName = p[0] as string;
    if (!this.authorize('PUB', 'publish', topicName, '')) return;
    const topic = this.client.host.getTopic(topicName);
    this.acknowledge(() => topic.publish(body), body.length, ErrorCode.PubFailed, 'PUB');
    this.client.published(topicName, 1);
  }

  private MPUB(cmd: Command, line: boolean): void {
    const p = cmd.params;
    if (line) {
      if (p.length < 1) throw fatal(ErrorCode.Invalid, 'MPUB insufficient number of parameters');
      if (!isValidTopicName(p[0] as string)) {
        // NSQ repeats the code inside the description here (nsq-spec §2.6).
        throw fatal(ErrorCode.BadTopic, `E_BAD_TOPIC MPUB topic name ${goQuote(p[0] as string)} is not valid`);
      }
      // nsqd gets (creates) the topic before reading the body, so even a refused MPUB creates it.
      this.client.host.getTopic(p[0] as string);
      // MPUB is authorized before its body is read (nsq-spec §2.8).
      this.authorize('MPUB', 'publish', p[0] as string, '');
      return;
    }
    // A bad count or message size, reported by the decoder at the byte nsqd reports it.
    if (cmd.error !== null) throw cmd.error;
    const body = this.readBody(cmd, ErrorCode.BadBody, 'MPUB', 'body', false);
    const { starts, lengths, count } = cmd.messages as MpubMessages;
    const topicName = p[0] as string;
    const topic = this.client.host.getTopic(topicName);
    this.acknowledge(() => topic.publishBatch(body, starts, lengths, count), body.length, ErrorCode.MpubFailed, 'MPUB');
    this.client.published(topicName, count);
  }

  private DPUB(cmd: Command, line: boolean): void {
    const p = cmd.params;
    if (line) {
      if (p.length < 2) throw fatal(ErrorCode.Invalid, 'DPUB insufficient number of parameters');
      if (!isValidTopicName(p[0] as string)) {
        throw fatal(ErrorCode.BadTopic, `DPUB topic name ${goQuote(p[0] as string)} is not valid`);
      }
      const ms = parseBase10(p[1] as string);
      if (ms === null) throw fatal(ErrorCode.Invalid, `DPUB could not parse timeout ${p[1]}`);
      if (ms < 0 || ms > this.options.maxReqTimeoutMs) {
        throw fatal(ErrorCode.Invalid, `DPUB timeout ${ms} out of range 0-${this.options.maxReqTimeoutMs}`);
      }
      return;
    }
    const body = this.readBody(cmd, ErrorCode.BadMessage, 'DPUB', 'message body', false);
    const topicName = p[0] as string;
    if (!this.authorize('DPUB', 'publish', topicName, '')) return;
    const topic = this.client.host.getTopic(topicName);
    const deferMs = parseBase10(p[1] as string) as number;
    this.acknowledge(() => topic.publishDeferred(body, deferMs), body.length, ErrorCode.DpubFailed, 'DPUB');
    this.client.published(topicName, 1);
  }

  /** Checks of FIN, REQ and TOUCH; returns the message ID. */
  private messageId(name: string, p: string[], params: number): string {
    const state = this.client.state;
    if (state !== ClientState.Subscribed && state !== ClientState.Closing) {
      throw fatal(ErrorCode.Invalid, `cannot ${name} in current state`);
    }
    if (p.length < params) throw fatal(ErrorCode.Invalid, `${name} insufficient number of params`);
    const id = p[0] as string;
    if (id.length !== MESSAGE_ID_LENGTH) throw fatal(ErrorCode.Invalid, 'invalid message ID');
    return id;
  }

  /** Sizes the decoder refused (<= 0, over the limit; body null) get NSQ's error; IDENTIFY and AUTH test too big first. */
  private readBody(cmd: Command, code: ErrorCode, name: string, what: string, bigFirst: boolean): Buffer {
    if (cmd.body !== null) return cmd.body;
    const size = cmd.bodySize;
    const limit = this.client.decoder.bodyLimit(cmd.name);
    const tooBig = `${name} ${what === 'body' ? 'body' : 'message'} too big ${size} > ${limit}`;
    const invalid = `${name} invalid ${what} size ${size}`;
    if (bigFirst && size > limit) throw fatal(code, tooBig);
    if (size <= 0) throw fatal(code, invalid);
    throw fatal(code, tooBig);
  }

  /**
   * `OK` at once when safe in memory; else when the group commit stored it, in command order: decoding goes on
   * meanwhile (nsqd reads the next command while one is stored), so a pipelining publisher shares a commit with
   * itself. A failing disk is NSQ's fatal E_PUB_FAILED (nsq-spec §2.8).
   */
  private acknowledge(publish: () => Promise<void> | null, bytes: number, code: ErrorCode, name: string): void {
    const c = this.client;
    let stored: Promise<void> | null;
    try {
      stored = publish();
    } catch (err) {
      // A cap with overflow=reject (issue 19): the client may retry later, so not fatal.
      if (err instanceof TopicFullError) throw new ProtocolError(code, `${name} failed ${err.message}`, false);
      throw fatal(code, `${name} failed ${(err as Error).message}`);
    }
    if (stored === null) {
      c.answers.ready(this.writeOk);
      return;
    }
    c.answers.wait(stored, bytes, this.writeOk, (err) => {
      // Neither OK nor an error is true: the publisher sees the connection close, an unknown outcome.
      if (err instanceof OutcomeUnknownError) {
        c.host.logger.warn(`PROTOCOL(V2): [${c.remoteAddress}] ${name} left unanswered - ${err.message}`);
        c.close();
      } else c.sendFatal(fatal(code, `${name} failed ${err.message}`));
      return false;
    });
    if (c.answers.full) c.waitForAnswers(false, DONE);
  }

  /** nsqd's CheckAuth: false while expired authorizations are asked again (the command is retried afterwards). */
  private authorize(command: string, permission: 'subscribe' | 'publish', topic: string, channel: string): boolean {
    const c = this.client;
    if (c.auth.check(command, permission, topic, channel)) return true;
    // The auth server's verdict may be an error: it must follow the answers before it.
    if (c.answers.pending) {
      c.waitForAnswers(true, null);
      return false;
    }
    this.queryAuth(null, (fresh) => {
      c.auth.state = fresh;
    });
    return false;
  }

  /** Asks the auth servers (AUTH's secret, or the last one when null) with decoding paused; `done` runs on success. */
  private queryAuth(secret: string | null, done: (state: AuthState) => void): void {
    const c = this.client;
    c.suspend(null);
    const peer = {
      commonName: c.transport.commonName,
      remoteIp: c.socket.remoteAddress ?? '',
      tls: c.tlsSocket !== null,
    };
    c.auth.query(peer, secret).then(
      (state) => {
        if (c.closed) return;
        try {
          done(state);
        } catch (err) {
          this.fail(err);
          return;
        }
        c.resume();
      },
      (err: unknown) => {
        if (c.closed) return;
        c.host.logger.warn(`PROTOCOL(V2): [${c.remoteAddress}] auth failed - ${(err as Error).message}`);
        c.sendFatal(fatal(ErrorCode.AuthFailed, 'AUTH failed'));
      },
    );
  }

  /** Sends an error frame (after the answers before it); a fatal one closes the connection. Returns whether to go on. */
  private fail(err: unknown): boolean {
    if (!(err instanceof ProtocolError)) throw err;
    const c = this.client;
    if (c.answers.pending) {
      c.answers.ready(() => this.failNow(err));
      if (!err.fatal && !c.answers.full) return true;
      c.waitForAnswers(err.fatal, DONE);
      return false;
    }
    return this.failNow(err);
  }

  private failNow(err: ProtocolError): boolean {
    if (err.fatal) {
      this.client.sendFatal(err);
      return false;
    }
    this.client.writeFrame(encodeErrorFrame(err.code, err.description));
    return true;
  }
}

function refuseWithoutTls(cmd: Command): never {
  throw fatal(ErrorCode.Invalid, `cannot ${cmd.name} in current state (TLS required)`);
}

export function protocolV2(client: ClientV2): CommandHandler {
  return new ProtocolV2(client);
}
