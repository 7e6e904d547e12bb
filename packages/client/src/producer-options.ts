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

/** Give `nsqdAddress`, `nsqdAddresses`, or both. */
export interface ProducerBaseOptions extends IdentifyOptions {
  nsqdAddress?: string;
  /** Publishes go to the healthiest, fastest one (a host pool). */
  nsqdAddresses?: readonly string[];
  /** Deadline for connecting and the IDENTIFY handshake (default 5000 ms). */
  dialTimeoutMs?: number;
  /** First reconnect delay after a failure (default 250 ms); doubles per failure, with jitter. */
  reconnectMinDelayMs?: number;
  /** Upper bound of the reconnect delay (default 30000 ms). */
  reconnectMaxDelayMs?: number;
  /** From the call to nsqd's answer, reconnects and retries included, before `E_TIMEOUT` (default 30000 ms). */
  publishTimeoutMs?: number;
  /** Sends of one publish before a connection loss is reported (default 5): delivery is at least once. */
  maxPublishAttempts?: number;
  /** Share of publishes sent to a random healthy host rather than the fastest (default 0.1). */
  epsilon?: number;
  /** How long `close()` waits for outstanding publishes to be answered (default 5000 ms). */
  closeTimeoutMs?: number;
  /** Where connection problems are reported (default: stderr; `null`: nowhere). */
  logger?: Logger | null;
}

/** Optional while the body type is `Buffer | string` ({@link bytesCodec}), so `Producer<Order>` needs one. */
export type ProducerCodecOption<T> = [T] extends [Buffer | string]
  ? { /** How bodies are encoded (default {@link bytesCodec}: Buffer as is, string as UTF-8). */ codec?: Codec<T> }
  : { /** How bodies are encoded into bytes. */ codec: Codec<T> };

export type ProducerOptions<T = Buffer | string> = ProducerBaseOptions & ProducerCodecOption<T>;

/** Throws a ClientError E_INVALID_ARGUMENT naming a bad option; returns each address once. */
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
