/** IDENTIFY (nsq-spec §2.7), keys in NSQ's snake_case wire names. */
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
  /** nsq-ts extensions, so a client can refuse an oversize body rather than lose the connection. */
  max_msg_size?: number;
  max_body_size?: number;
}

export type JsonFieldKind = 'string' | 'bool' | 'int' | 'int32';
type FieldKind = JsonFieldKind;
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

/** Go's encoding/json: unknown keys ignored, keys case-insensitive, `null` keeps the default, wrong types refused. */
export function decodeIdentifyBody(body: Buffer): IdentifyRequest {
  const request = defaultIdentifyRequest();
  decodeGoJsonFields(body, FIELDS, request as unknown as Record<string, unknown>);
  return request;
}

/** The same rules for any struct (nsqlookupd's IDENTIFY). Throws IdentifyDecodeError. */
export function decodeGoJsonFields(
  body: Buffer,
  fields: Readonly<Record<string, JsonFieldKind>>,
  target: Record<string, unknown>,
): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new IdentifyDecodeError('invalid JSON');
  }
  if (parsed === null) return;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new IdentifyDecodeError('body is not a JSON object');
  }
  for (const [rawKey, value] of Object.entries(parsed as Record<string, unknown>)) {
    const key = rawKey.toLowerCase();
    if (!Object.hasOwn(fields, key) || value === null) continue;
    target[key] = coerce(key, fields[key] as FieldKind, value);
  }
  rejectNonIntegerLiterals(body.toString('utf8'), fields);
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

/** Go refuses `1000.0` or `1e3` for an int field; JSON.parse cannot tell, so the raw literals are checked. */
function rejectNonIntegerLiterals(text: string, fields: Readonly<Record<string, JsonFieldKind>>): void {
  let i = skipSpace(text, 0);
  if (text[i] !== '{') return;
  i = skipSpace(text, i + 1);
  while (i < text.length && text[i] !== '}') {
    const keyEnd = skipString(text, i);
    const key = (JSON.parse(text.slice(i, keyEnd)) as string).toLowerCase();
    const valueStart = skipSpace(text, skipSpace(text, keyEnd) + 1); // past the ':'
    const valueEnd = skipValue(text, valueStart);
    const kind = Object.hasOwn(fields, key) ? fields[key] : undefined;
    const literal = text.slice(valueStart, valueEnd);
    if ((kind === 'int' || kind === 'int32') && /^-?\d/.test(literal) && /[.eE]/.test(literal)) {
      throw new IdentifyDecodeError(`${key} must be an integer`);
    }
    i = skipSpace(text, valueEnd);
    if (text[i] === ',') i = skipSpace(text, i + 1);
  }
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  return i;
}

/** `i` is at an opening quote; returns the index after the closing one. */
function skipString(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    if (text[j] === '\\') j++;
    else if (text[j] === '"') return j + 1;
  }
  return text.length;
}

/** Returns the index after the JSON value starting at `i` (objects and arrays skipped whole). */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const d = text[j];
      if (d === '"') j = skipString(text, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if ((d === '}' || d === ']') && --depth === 0) return j + 1;
    }
    return text.length;
  }
  let j = i;
  while (j < text.length && !',}] \t\n\r'.includes(text[j] as string)) j++;
  return j;
}
