import type { Codec } from './codecs.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { IdentifyOptions } from './identify.js';
import type { Logger } from './logger.js';
import {
  checkAddress,
  checkAddresses,
  checkCodec,
  checkIdentifyOptions,
  checkLogger,
  checkNumber,
} from './validate.js';

/**
 * Options of a {@link Producer} besides the codec. Give `nsqdAddress`, `nsqdAddresses`, or both.
 */
export interface ProducerBaseOptions extends IdentifyOptions {
  /** One nsqd TCP address, `host:port`. */
  nsqdAddress?: string;
  /** Several nsqd TCP addresses: publishes go to the healthiest, fastest one (a host pool). */
  nsqdAddresses?: readonly string[];
  /** Deadline for connecting and the IDENTIFY handshake (default 5000 ms). */
  dialTimeoutMs?: number;
  /** First reconnect delay after a failure (default 250 ms); doubles per failure, with jitter. */
  reconnectMinDelayMs?: number;
  /** Upper bound of the reconnect delay (default 30000 ms). */
  reconnectMaxDelayMs?: number;
  /**
   * How long a publish may take, from the call to nsqd's answer — waiting for a connection,
   * reconnects and retries included — before it is rejected with `E_TIMEOUT` (default 30000 ms).
   */
  publishTimeoutMs?: number;
  /**
   * How many times one publish is sent before a connection loss is reported to the caller
   * (default 5). A publish whose connection drops before nsqd answered is sent again, to
   * another host when there is one, so delivery is at least once.
   */
  maxPublishAttempts?: number;
  /** Share of publishes sent to a random healthy host rather than the fastest (default 0.1). */
  epsilon?: number;
  /** How long `close()` waits for outstanding publishes to be answered (default 5000 ms). */
  closeTimeoutMs?: number;
  /**
   * Where connection failures and reconnects are reported (default: warnings and errors on
   * stderr; `null`: nowhere). Publish failures always reach the publish's promise.
   */
  logger?: Logger | null;
}

/**
 * The codec option: optional while the body type is `Buffer | string` (encoded by
 * {@link bytesCodec}), required for any other body type, so `new Producer<Order>({...})` without
 * one does not compile.
 */
export type ProducerCodecOption<T> = [T] extends [Buffer | string]
  ? { /** How bodies are encoded (default {@link bytesCodec}: Buffer as is, string as UTF-8). */ codec?: Codec<T> }
  : { /** How bodies are encoded into bytes. */ codec: Codec<T> };

/** Options of a {@link Producer}: {@link ProducerBaseOptions} and, for non-byte bodies, a codec. */
export type ProducerOptions<T = Buffer | string> = ProducerBaseOptions & ProducerCodecOption<T>;

/**
 * Checks a Producer's options (throws a ClientError E_INVALID_ARGUMENT naming a bad one) and
 * returns its nsqd addresses, each once.
 */
export function checkProducerOptions<T>(o: ProducerBaseOptions & { codec?: Codec<T> }): string[] {
  const addresses = checkAddresses('nsqdAddresses', o.nsqdAddresses);
  if (o.nsqdAddress !== undefined) addresses.unshift(checkAddress('nsqdAddress', o.nsqdAddress));
  if (addresses.length === 0) {
    throw new ClientError(ClientErrorCode.InvalidArgument, 'Producer needs nsqdAddress or nsqdAddresses');
  }
  checkCodec(o.codec, 'encode');
  checkLogger(o.logger);
  checkIdentifyOptions(o);
  for (const name of ['dialTimeoutMs', 'publishTimeoutMs', 'closeTimeoutMs'] as const) {
    checkNumber(name, o[name], { min: 1 });
  }
  checkNumber('reconnectMinDelayMs', o.reconnectMinDelayMs, { min: 1 });
  checkNumber('reconnectMaxDelayMs', o.reconnectMaxDelayMs, { min: o.reconnectMinDelayMs ?? 1 });
  checkNumber('maxPublishAttempts', o.maxPublishAttempts, { min: 1, integer: true });
  checkNumber('epsilon', o.epsilon, { min: 0, max: 1 });
  return [...new Set(addresses)];
}
