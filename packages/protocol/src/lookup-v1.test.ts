import { describe, expect, it } from 'vitest';
import { encodeCommand } from './commands.js';
import {
  encodeLookupResponse,
  isLookupError,
  LookupResponseDecodeError,
  LookupResponseDecoder,
  MAGIC_V1,
} from './lookup-v1.js';

function decodeAll(bytes: Buffer, split: number[]): string[] {
  const out: string[] = [];
  const decoder = new LookupResponseDecoder();
  let at = 0;
  for (const end of [...split, bytes.length]) {
    decoder.push(bytes.subarray(at, end), (data) => out.push(data.toString('latin1')));
    at = end;
  }
  return out;
}

describe('lookup V1 codec', () => {
  it('has the magic and frames responses as [size][data] with no type', () => {
    expect(MAGIC_V1.toString('latin1')).toBe('  V1');
    expect(encodeLookupResponse('OK')).toEqual(Buffer.from([0, 0, 0, 2, 0x4f, 0x4b]));
    expect(encodeLookupResponse('')).toEqual(Buffer.from([0, 0, 0, 0]));
  });

  it('IDENTIFY is the command line then [int32 size][JSON], as encodeCommand builds it', () => {
    const body = '{"version":"1.3.0"}';
    const bytes = encodeCommand('IDENTIFY', [], body);
    expect(bytes.subarray(0, 9).toString()).toBe('IDENTIFY\n');
    expect(bytes.readInt32BE(9)).toBe(body.length);
    expect(bytes.subarray(13).toString()).toBe(body);
    expect(encodeCommand('REGISTER', ['t', 'c']).toString()).toBe('REGISTER t c\n');
  });

  it('decodes responses whole, byte by byte and split at every offset', () => {
    const stream = Buffer.concat(
      ['OK', '{"a":1}', '', 'E_INVALID invalid command X'].map((s) => encodeLookupResponse(s)),
    );
    const expected = ['OK', '{"a":1}', '', 'E_INVALID invalid command X'];
    expect(decodeAll(stream, [])).toEqual(expected);
    expect(
      decodeAll(
        stream,
        Array.from({ length: stream.length - 1 }, (_, i) => i + 1),
      ),
    ).toEqual(expected);
    for (let i = 0; i <= stream.length; i++) expect(decodeAll(stream, [i])).toEqual(expected);
  });

  it('refuses a response size beyond the limit before buffering it', () => {
    const decoder = new LookupResponseDecoder({ maxResponseBytes: 10 });
    expect(() => decoder.push(Buffer.from([0, 0, 0, 11]), () => undefined)).toThrow(LookupResponseDecodeError);
  });

  it('tells errors from replies by content', () => {
    expect(isLookupError(Buffer.from('E_BAD_TOPIC REGISTER topic name'))).toBe(true);
    expect(isLookupError(Buffer.from('OK'))).toBe(false);
    expect(isLookupError(Buffer.from('{"broadcast_address":"E_"}'))).toBe(false);
  });
});
