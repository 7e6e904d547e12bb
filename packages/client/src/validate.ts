import { isValidChannelName, isValidTopicName } from '@nsq-ts/protocol';
import { parseAddress } from './address.js';
import { describeValue } from './codecs.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { IdentifyOptions } from './identify.js';

// Run in the constructors, so a mistake is reported where it was made; each throws E_INVALID_ARGUMENT.
function invalid(message: string): ClientError {
  return new ClientError(ClientErrorCode.InvalidArgument, message);
}

/** `host:port` with a port in 1..65535. */
export function checkAddress(option: string, value: unknown): string {
  if (typeof value !== 'string') throw invalid(`${option} must be a "host:port" string, not ${describeValue(value)}`);
  try {
    parseAddress(value);
  } catch (err) {
    throw invalid(`${option}: ${(err as Error).message} (expected "host:port", e.g. "127.0.0.1:4150")`);
  }
  return value;
}

export function checkAddresses(option: string, value: unknown, check = checkAddress): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw invalid(`${option} must be an array of addresses, not ${describeValue(value)}`);
  return value.map((v, i) => check(`${option}[${i}]`, v));
}

/** An nsqlookupd HTTP address: `host:port` or an `http(s)://` URL. */
export function checkLookupdAddress(option: string, value: unknown): string {
  if (typeof value === 'string' && /^https?:\/\//.test(value)) {
    try {
      new URL(value);
      return value;
    } catch {
      throw invalid(`${option}: "${value}" is not a URL`);
    }
  }
  return checkAddress(option, value);
}

interface NumberRule {
  min?: number;
  max?: number;
  integer?: boolean;
}

export function checkNumber(option: string, value: unknown, rule: NumberRule = {}): void {
  if (value === undefined) return;
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (rule.integer !== true || Number.isInteger(value)) &&
    value >= (rule.min ?? 0) &&
    value <= (rule.max ?? Number.MAX_SAFE_INTEGER);
  if (!ok) {
    const range = `${rule.min ?? 0}..${rule.max ?? '∞'}`;
    throw invalid(
      `${option} must be ${rule.integer === true ? 'an integer' : 'a number'} in ${range}, not ${String(value)}`,
    );
  }
}

export function checkType(option: string, value: unknown, type: 'boolean' | 'string' | 'function'): void {
  if (value !== undefined && typeof value !== type) {
    throw invalid(`${option} must be a ${type}, not ${describeValue(value)}`);
  }
}

export function checkTopic(value: unknown): string {
  if (typeof value !== 'string' || !isValidTopicName(value))
    throw invalid(`invalid topic name ${JSON.stringify(value)}`);
  return value;
}

export function checkChannel(value: unknown): string {
  if (typeof value !== 'string' || !isValidChannelName(value)) {
    throw invalid(`invalid channel name ${JSON.stringify(value)}`);
  }
  return value;
}

export function checkCodec(value: unknown, needs: 'encode' | 'decode'): void {
  if (value === undefined) return;
  const fn = (value as Record<string, unknown> | null)?.[needs];
  if (typeof fn !== 'function') throw invalid(`codec must have an ${needs}() function`);
}

export function checkLogger(value: unknown): void {
  if (value === undefined || value === null) return;
  const l = value as Record<string, unknown>;
  if (typeof l.warn !== 'function' || typeof l.error !== 'function') {
    throw invalid('logger must be null or have warn() and error() functions (console does)');
  }
}

/** IDENTIFY options, within the ranges nsqd accepts (nsq-spec §2.7). */
export function checkIdentifyOptions(o: IdentifyOptions): void {
  checkType('clientId', o.clientId, 'string');
  checkType('hostname', o.hostname, 'string');
  checkType('userAgent', o.userAgent, 'string');
  if (o.heartbeatIntervalMs !== -1) checkNumber('heartbeatIntervalMs', o.heartbeatIntervalMs, { min: 1_000 });
  if (o.outputBufferSize !== -1) checkNumber('outputBufferSize', o.outputBufferSize, { min: 64, integer: true });
  if (o.outputBufferTimeoutMs !== -1) checkNumber('outputBufferTimeoutMs', o.outputBufferTimeoutMs, { min: 1 });
  checkNumber('msgTimeoutMs', o.msgTimeoutMs, { min: 1_000, integer: true });
  checkNumber('sampleRate', o.sampleRate, { min: 0, max: 99, integer: true });
  checkType('snappy', o.snappy, 'boolean');
  checkType('deflate', o.deflate, 'boolean');
  if (o.snappy === true && o.deflate === true) throw invalid('snappy and deflate cannot both be set');
  checkNumber('deflateLevel', o.deflateLevel, { min: 1, max: 9, integer: true });
  if (o.tls !== undefined && typeof o.tls !== 'boolean' && (typeof o.tls !== 'object' || o.tls === null)) {
    throw invalid(`tls must be a boolean or tls.connect options, not ${describeValue(o.tls)}`);
  }
  checkType('authSecret', o.authSecret, 'string');
}
