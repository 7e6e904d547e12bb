import { Packr } from 'msgpackr';

/** A consumer decodes `message.body` lazily, on first access. */
export interface Codec<T> {
  readonly name: string;
  encode(value: T): Buffer;
  decode(bytes: Buffer): T;
}

/** Bodies are raw bytes, passed through untouched (no copy). */
export const rawCodec: Codec<Buffer> = {
  name: 'raw',
  encode: (value) => value,
  decode: (bytes) => bytes,
};

/** The default producer codec: Buffer/Uint8Array as is, strings as UTF-8, anything else a TypeError. */
export const bytesCodec: Codec<Buffer | string> = {
  name: 'bytes',
  encode: (value) => {
    // Typed as Buffer | string, but JavaScript callers can pass anything.
    const v: unknown = value;
    if (typeof v === 'string') return Buffer.from(v, 'utf8');
    if (Buffer.isBuffer(v)) return v;
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    throw new TypeError(`the body is ${describeValue(v)}, not a Buffer or string: give the producer a codec`);
  },
  decode: (bytes) => bytes,
};

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  return `a ${typeof value}`;
}

export const stringCodec: Codec<string> = {
  name: 'string',
  encode: (value) => {
    const v: unknown = value;
    if (typeof v !== 'string') throw new TypeError(`the body is ${describeValue(v)}, not a string`);
    return Buffer.from(v, 'utf8');
  },
  decode: (bytes) => bytes.toString('utf8'),
};

/** Bodies are JSON; the type parameter is the caller's promise, nothing is validated. */
export function jsonCodec<T>(): Codec<T> {
  return {
    name: 'json',
    encode: (value) => {
      const text: string | undefined = JSON.stringify(value);
      // JSON.stringify gives undefined for undefined, functions and symbols: no JSON document.
      if (text === undefined) throw new TypeError(`${describeValue(value)} has no JSON form`);
      return Buffer.from(text, 'utf8');
    },
    decode: (bytes) => JSON.parse(bytes.toString('utf8')) as T,
  };
}

/** msgpackr, with records and structure sharing off by default so any MessagePack reader can decode. */
export function msgpackCodec<T>(options: ConstructorParameters<typeof Packr>[0] = {}): Codec<T> {
  const packr = new Packr({ useRecords: false, ...options });
  return {
    name: 'msgpack',
    // pack() returns a view of msgpackr's reusable buffer: copy it, since the body is queued.
    encode: (value) => Buffer.from(packr.pack(value)),
    decode: (bytes) => packr.unpack(bytes) as T,
  };
}
