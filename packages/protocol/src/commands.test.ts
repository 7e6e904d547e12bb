import { describe, expect, it } from 'vitest';
import { type Command, CommandDecoder } from './command-decoder.js';
import { decodeMpubBody, encodeCommand, encodeMpubBody, MAGIC_V2 } from './commands.js';

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function bytes(...parts: Array<string | Buffer>): string {
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p))).toString('hex');
}

describe('MAGIC_V2', () => {
  it('is two spaces then V2', () => {
    expect(MAGIC_V2.toString('hex')).toBe('20205632');
  });
});

describe('encodeCommand', () => {
  it('commands without params or body', () => {
    expect(encodeCommand('NOP').toString('hex')).toBe(bytes('NOP\n'));
    expect(encodeCommand('CLS', []).toString('hex')).toBe(bytes('CLS\n'));
    expect(encodeCommand('RDY').toString('hex')).toBe(bytes('RDY\n'));
  });

  it('params are separated by single spaces', () => {
    expect(encodeCommand('SUB', ['orders', 'archive']).toString('hex')).toBe(bytes('SUB orders archive\n'));
    expect(encodeCommand('RDY', ['100']).toString('hex')).toBe(bytes('RDY 100\n'));
    expect(encodeCommand('FIN', ['0a1b2c3d4e5f6071']).toString('hex')).toBe(bytes('FIN 0a1b2c3d4e5f6071\n'));
    expect(encodeCommand('REQ', ['0a1b2c3d4e5f6071', '5000']).toString('hex')).toBe(
      bytes('REQ 0a1b2c3d4e5f6071 5000\n'),
    );
    expect(encodeCommand('TOUCH', ['0a1b2c3d4e5f6071']).toString('hex')).toBe(bytes('TOUCH 0a1b2c3d4e5f6071\n'));
  });

  it('an empty param yields a double space', () => {
    expect(encodeCommand('SUB', ['', 'c']).toString('hex')).toBe(bytes('SUB  c\n'));
    expect(encodeCommand('RDY', ['']).toString('hex')).toBe(bytes('RDY \n'));
  });

  it('a body follows the line as [int32 BE size][bytes]', () => {
    expect(encodeCommand('PUB', ['orders'], Buffer.from('hello')).toString('hex')).toBe(
      bytes('PUB orders\n', int32(5), 'hello'),
    );
    expect(encodeCommand('DPUB', ['orders', '1500'], Buffer.from('later')).toString('hex')).toBe(
      bytes('DPUB orders 1500\n', int32(5), 'later'),
    );
    expect(encodeCommand('AUTH', [], 'secret').toString('hex')).toBe(bytes('AUTH\n', int32(6), 'secret'));
  });

  it('a string body is UTF-8 and its size counts bytes, not chars', () => {
    const json = '{"client_id":"h\u00e9te"}';
    const out = encodeCommand('IDENTIFY', [], json);
    expect(out.toString('hex')).toBe(bytes('IDENTIFY\n', int32(Buffer.byteLength(json)), Buffer.from(json, 'utf8')));
    expect(out.readInt32BE('IDENTIFY\n'.length)).toBe(json.length + 1);
  });

  it('an empty body is still framed, with size 0', () => {
    expect(encodeCommand('PUB', ['t'], Buffer.alloc(0)).toString('hex')).toBe(bytes('PUB t\n', int32(0)));
  });

  it('binary body bytes are copied verbatim', () => {
    const body = Buffer.from([0x00, 0x0a, 0x0d, 0xff, 0x80]);
    expect(encodeCommand('PUB', ['t'], body).toString('hex')).toBe(bytes('PUB t\n', int32(5), body));
  });

  it('a latin1 param is written byte for byte', () => {
    const raw = Buffer.from([0x74, 0xe9, 0xff]);
    expect(encodeCommand('SUB', [raw.toString('latin1'), 'c']).toString('hex')).toBe(bytes('SUB ', raw, ' c\n'));
  });

  it('round-trips through CommandDecoder', () => {
    const stream = Buffer.concat([
      encodeCommand('IDENTIFY', [], '{"feature_negotiation":true}'),
      encodeCommand('SUB', ['t', 'c']),
      encodeCommand('RDY', ['10']),
      encodeCommand('PUB', ['t'], Buffer.from('m1')),
      encodeCommand('MPUB', ['t'], encodeMpubBody([Buffer.from('a'), Buffer.from('bc')])),
      encodeCommand('DPUB', ['t', '100'], 'm2'),
      encodeCommand('NOP'),
    ]);
    const got: Array<{ name: string; params: string[]; body: string | null }> = [];
    const decoder = new CommandDecoder({ maxMsgBytes: 1024, maxBodyBytes: 4096 });
    decoder.push(stream, {
      onBodyCommandLine: () => true,
      onCommand: (cmd: Command) => {
        got.push({ name: cmd.name, params: cmd.params, body: cmd.body === null ? null : cmd.body.toString('hex') });
        return true;
      },
      onLineTooLong: () => {},
    });
    expect(got).toEqual([
      { name: 'IDENTIFY', params: [], body: Buffer.from('{"feature_negotiation":true}').toString('hex') },
      { name: 'SUB', params: ['t', 'c'], body: null },
      { name: 'RDY', params: ['10'], body: null },
      { name: 'PUB', params: ['t'], body: Buffer.from('m1').toString('hex') },
      { name: 'MPUB', params: ['t'], body: bytes(int32(2), int32(1), 'a', int32(2), 'bc') },
      { name: 'DPUB', params: ['t', '100'], body: Buffer.from('m2').toString('hex') },
      { name: 'NOP', params: [], body: null },
    ]);
  });
});

describe('encodeMpubBody', () => {
  it('is [count][size][bytes]... byte-exact', () => {
    const out = encodeMpubBody([Buffer.from('a'), Buffer.from('bc'), Buffer.from([0, 0x0a, 0xff])]);
    expect(out.toString('hex')).toBe(
      bytes(int32(3), int32(1), 'a', int32(2), 'bc', int32(3), Buffer.from([0, 0x0a, 0xff])),
    );
  });

  it('an empty list is a count of 0', () => {
    expect(encodeMpubBody([]).toString('hex')).toBe('00000000');
  });
});

describe('decodeMpubBody', () => {
  const MAX_MSG = 100;
  const MAX_BODY = 1000; // (1000 - 4) / 5 = 199.2 -> at most 199 messages

  function ok(body: Buffer, maxMsg = MAX_MSG, maxBody = MAX_BODY): string[] {
    const result = decodeMpubBody(body, maxMsg, maxBody);
    if ('error' in result) throw new Error(`unexpected error ${JSON.stringify(result.error)}`);
    return result.messages.map((m) => m.toString('latin1'));
  }

  function err(body: Buffer, maxMsg = MAX_MSG, maxBody = MAX_BODY): unknown {
    const result = decodeMpubBody(body, maxMsg, maxBody);
    if (!('error' in result)) throw new Error(`expected an error, got ${result.messages.length} messages`);
    return result.error;
  }

  it('round-trips encodeMpubBody', () => {
    const messages = [Buffer.from('one'), Buffer.from([0, 0x0a, 0xff]), Buffer.alloc(MAX_MSG, 0x7a), Buffer.from('x')];
    const result = decodeMpubBody(encodeMpubBody(messages), MAX_MSG, MAX_BODY);
    expect('messages' in result).toBe(true);
    if ('messages' in result) {
      expect(result.messages.map((m) => m.toString('hex'))).toEqual(messages.map((m) => m.toString('hex')));
    }
  });

  it('messages are views into the body (no copy)', () => {
    const body = encodeMpubBody([Buffer.from('abc'), Buffer.from('de')]);
    const result = decodeMpubBody(body, MAX_MSG, MAX_BODY);
    if (!('messages' in result)) throw new Error('expected messages');
    expect(result.messages[0].buffer).toBe(body.buffer);
    expect(result.messages[0].byteOffset).toBe(body.byteOffset + 8);
    expect(result.messages[1].byteOffset).toBe(body.byteOffset + 8 + 3 + 4);
  });

  it('bytes after the last message are ignored, as nsqd does', () => {
    const body = Buffer.concat([encodeMpubBody([Buffer.from('a'), Buffer.from('b')]), Buffer.from('trailing junk')]);
    expect(ok(body)).toEqual(['a', 'b']);
  });

  it('count 0 -> count error', () => {
    expect(err(int32(0))).toEqual({ kind: 'count', count: 0 });
    expect(err(Buffer.concat([int32(0), int32(1), Buffer.from('a')]))).toEqual({ kind: 'count', count: 0 });
  });

  it('negative count -> count error', () => {
    expect(err(Buffer.concat([int32(-1), int32(1), Buffer.from('a')]))).toEqual({ kind: 'count', count: -1 });
    expect(err(int32(-0x8000_0000))).toEqual({ kind: 'count', count: -0x8000_0000 });
  });

  it('count above (maxBodyBytes - 4) / 5 -> count error, checked before anything else', () => {
    expect(err(int32(200))).toEqual({ kind: 'count', count: 200 });
    expect(err(int32(0x7fff_ffff))).toEqual({ kind: 'count', count: 0x7fff_ffff });
    // 199 one-byte messages fit exactly: 4 + 199 * 5 = 999 <= 1000.
    const max = Array.from({ length: 199 }, (_, i) => Buffer.from([i & 0xff]));
    expect(ok(encodeMpubBody(max))).toHaveLength(199);
  });

  it('the count limit uses integer division like Go', () => {
    // (13 - 4) / 5 = 1 in Go: two messages are too many even though 4 + 2 * 5 = 14 is close.
    expect(err(encodeMpubBody([Buffer.from('a'), Buffer.from('b')]), 10, 13)).toEqual({ kind: 'count', count: 2 });
    expect(ok(encodeMpubBody([Buffer.from('a')]), 10, 13)).toEqual(['a']);
    // (14 - 4) / 5 = 2
    expect(ok(encodeMpubBody([Buffer.from('a'), Buffer.from('b')]), 10, 14)).toEqual(['a', 'b']);
  });

  it('message size 0 -> size error with its index', () => {
    const body = Buffer.concat([int32(3), int32(1), Buffer.from('a'), int32(0), int32(1), Buffer.from('c')]);
    expect(err(body)).toEqual({ kind: 'size', index: 1, size: 0 });
  });

  it('negative message size -> size error with its index', () => {
    expect(err(Buffer.concat([int32(1), int32(-7)]))).toEqual({ kind: 'size', index: 0, size: -7 });
    expect(err(Buffer.concat([int32(2), int32(1), Buffer.from('a'), int32(-0x8000_0000)]))).toEqual({
      kind: 'size',
      index: 1,
      size: -0x8000_0000,
    });
  });

  it('message size over maxMsgBytes -> too-big; exactly maxMsgBytes is fine', () => {
    const tooBig = Buffer.concat([int32(2), int32(1), Buffer.from('a'), int32(MAX_MSG + 1), Buffer.alloc(MAX_MSG + 1)]);
    expect(err(tooBig)).toEqual({ kind: 'too-big', index: 1, size: MAX_MSG + 1 });
    expect(ok(encodeMpubBody([Buffer.alloc(MAX_MSG, 0x61)]))).toEqual(['a'.repeat(MAX_MSG)]);
  });

  it('the size is checked before the bytes: an oversized size with no data is too-big, not truncated', () => {
    expect(err(Buffer.concat([int32(1), int32(MAX_MSG + 1)]))).toEqual({
      kind: 'too-big',
      index: 0,
      size: MAX_MSG + 1,
    });
    expect(err(Buffer.concat([int32(1), int32(0)]))).toEqual({ kind: 'size', index: 0, size: 0 });
  });

  it('a body shorter than the count -> truncated', () => {
    expect(err(Buffer.alloc(0))).toEqual({ kind: 'truncated' });
    expect(err(Buffer.from([0, 0, 1]))).toEqual({ kind: 'truncated' });
  });

  it('a missing or partial message size -> truncated-size with its index', () => {
    expect(err(int32(1))).toEqual({ kind: 'truncated-size', index: 0 });
    expect(
      err(Buffer.concat([int32(3), int32(1), Buffer.from('a'), int32(1), Buffer.from('b'), Buffer.from([0, 0])])),
    ).toEqual({
      kind: 'truncated-size',
      index: 2,
    });
  });

  it('message bytes cut short -> truncated-body with its index', () => {
    expect(err(Buffer.concat([int32(1), int32(5), Buffer.from('abcd')]))).toEqual({ kind: 'truncated-body', index: 0 });
    expect(err(Buffer.concat([int32(2), int32(1), Buffer.from('a'), int32(3)]))).toEqual({
      kind: 'truncated-body',
      index: 1,
    });
  });

  it('every strict prefix of a valid body is refused', () => {
    const body = encodeMpubBody([Buffer.from('abc'), Buffer.from('d'), Buffer.from('efgh')]);
    for (let n = 0; n < body.length; n++) {
      const result = decodeMpubBody(body.subarray(0, n), MAX_MSG, MAX_BODY);
      expect('error' in result, `prefix of ${n} bytes`).toBe(true);
    }
    expect(ok(body)).toEqual(['abc', 'd', 'efgh']);
  });
});
