/**
 * IDENTIFY (nsq-spec §2.7): the client's JSON body and nsqd's JSON reply.
 * Keys are NSQ's snake_case wire names; the broker maps them to its own options in one place.
 */
export interface IdentifyRequest {
  client_id: string;
  hostname: string;
  user_agent: string;
  feature_negotiation: boolean;
  heartbeat_interval: number;
  output_buffer_size: number;
  output_buffer_timeout: number;
  tls_v1: boolean;
  snappy: boolean;
  deflate: boolean;
  deflate_level: number;
  sample_rate: number;
  msg_timeout: number;
}

export interface IdentifyResponse {
  max_rdy_count: number;
  version: string;
  max_msg_timeout: number;
  msg_timeout: number;
  tls_v1: boolean;
  deflate: boolean;
  deflate_level: number;
  max_deflate_level: number;
  snappy: boolean;
  sample_rate: number;
  auth_required: boolean;
  output_buffer_size: number;
  output_buffer_timeout: number;
}

type FieldKind = 'string' | 'bool' | 'int' | 'int32';
const FIELDS: Record<keyof IdentifyRequest, FieldKind> = {
  client_id: 'string',
  hostname: 'string',
  user_agent: 'string',
  feature_negotiation: 'bool',
  heartbeat_interval: 'int',
  output_buffer_size: 'int',
  output_buffer_timeout: 'int',
  tls_v1: 'bool',
  snappy: 'bool',
  deflate: 'bool',
  deflate_level: 'int',
  sample_rate: 'int32',
  msg_timeout: 'int',
};

/** Thrown for a body nsqd's JSON decoder would refuse: the broker answers E_BAD_BODY. */
export class IdentifyDecodeError extends Error {
  override name = 'IdentifyDecodeError';
}

export function defaultIdentifyRequest(): IdentifyRequest {
  return {
    client_id: '',
    hostname: '',
    user_agent: '',
    feature_negotiation: false,
    heartbeat_interval: 0,
    output_buffer_size: 0,
    output_buffer_timeout: 0,
    tls_v1: false,
    snappy: false,
    deflate: false,
    deflate_level: 0,
    sample_rate: 0,
    msg_timeout: 0,
  };
}

/**
 * Decodes an IDENTIFY body with the strictness of Go's encoding/json into nsqd's struct:
 * unknown keys ignored, keys matched case-insensitively, `null` leaves the default, and a
 * wrong type (a string for an int, a fraction, an out-of-range integer) is an error.
 * A JSON `null` body decodes to the defaults, as Go's Unmarshal leaves the struct untouched.
 */
export function decodeIdentifyBody(body: Buffer): IdentifyRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new IdentifyDecodeError('invalid JSON');
  }
  const request = defaultIdentifyRequest();
  if (parsed === null) return request;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new IdentifyDecodeError('body is not a JSON object');
  }
  const target = request as unknown as Record<string, unknown>;
  for (const [rawKey, value] of Object.entries(parsed as Record<string, unknown>)) {
    const key = rawKey.toLowerCase() as keyof IdentifyRequest;
    if (!Object.hasOwn(FIELDS, key) || value === null) continue;
    target[key] = coerce(key, FIELDS[key], value);
  }
  rejectNonIntegerLiterals(body.toString('utf8'));
  return request;
}

function coerce(key: string, kind: FieldKind, value: unknown): string | boolean | number {
  switch (kind) {
    case 'string':
      if (typeof value !== 'string') throw new IdentifyDecodeError(`${key} must be a string`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new IdentifyDecodeError(`${key} must be a boolean`);
      return value;
    default: {
      const [min, max] =
        kind === 'int32' ? [-(2 ** 31), 2 ** 31 - 1] : [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
        throw new IdentifyDecodeError(`${key} must be an integer`);
      }
      return value;
    }
  }
}

/** `"key": number` pairs in JSON text (keys may contain escapes). */
const NUMBER_MEMBER_RE = /"((?:[^"\\]|\\.)*)"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/**
 * Go's decoder refuses `1000.0` or `1e3` for an int field even though the value is integral;
 * JSON.parse cannot tell, so the literals of the integer fields are checked in the text.
 */
function rejectNonIntegerLiterals(text: string): void {
  for (const m of text.matchAll(NUMBER_MEMBER_RE)) {
    const key = (m[1] as string).toLowerCase();
    const kind = Object.hasOwn(FIELDS, key) ? FIELDS[key as keyof IdentifyRequest] : undefined;
    if ((kind === 'int' || kind === 'int32') && /[.eE]/.test(m[2] as string)) {
      throw new IdentifyDecodeError(`${key} must be an integer`);
    }
  }
}
