import { describe, expect, it } from 'vitest';
import { ErrorCode, isFatalErrorCode, ProtocolError } from './errors.js';
import { encodeErrorFrame } from './frames.js';

/** Every V2 error code of nsq-spec §2.11 and whether nsqd closes the connection after it. */
const SPEC: Array<[ErrorCode, boolean]> = [
  ['E_BAD_PROTOCOL', true],
  ['E_INVALID', true],
  ['E_BAD_BODY', true],
  ['E_BAD_TOPIC', true],
  ['E_BAD_CHANNEL', true],
  ['E_BAD_MESSAGE', true],
  ['E_PUB_FAILED', true],
  ['E_MPUB_FAILED', true],
  ['E_DPUB_FAILED', true],
  ['E_SUB_FAILED', true],
  ['E_IDENTIFY_FAILED', true],
  ['E_AUTH_FIRST', true],
  ['E_AUTH_FAILED', true],
  ['E_UNAUTHORIZED', true],
  ['E_AUTH_DISABLED', true],
  ['E_AUTH_ERROR', true],
  ['E_FIN_FAILED', false],
  ['E_REQ_FAILED', false],
  ['E_TOUCH_FAILED', false],
];

describe('ErrorCode', () => {
  it('holds exactly the spec’s codes', () => {
    expect(Object.values(ErrorCode).sort()).toEqual(SPEC.map(([code]) => code).sort());
  });

  it('names map to the wire codes', () => {
    expect(ErrorCode.Invalid).toBe('E_INVALID');
    expect(ErrorCode.BadBody).toBe('E_BAD_BODY');
    expect(ErrorCode.FinFailed).toBe('E_FIN_FAILED');
    expect(ErrorCode.ReqFailed).toBe('E_REQ_FAILED');
    expect(ErrorCode.TouchFailed).toBe('E_TOUCH_FAILED');
  });
});

describe('isFatalErrorCode', () => {
  for (const [code, fatal] of SPEC) {
    it(`${code} is ${fatal ? 'fatal' : 'not fatal'}`, () => {
      expect(isFatalErrorCode(code)).toBe(fatal);
    });
  }

  it('only E_FIN_FAILED, E_REQ_FAILED and E_TOUCH_FAILED are non-fatal', () => {
    expect(SPEC.filter(([code]) => !isFatalErrorCode(code)).map(([code]) => code)).toEqual([
      'E_FIN_FAILED',
      'E_REQ_FAILED',
      'E_TOUCH_FAILED',
    ]);
  });

  it('unknown codes and near misses are fatal', () => {
    for (const code of ['', 'E_UNKNOWN', 'e_fin_failed', 'E_FIN_FAILED ', 'E_FIN', 'FIN_FAILED']) {
      expect(isFatalErrorCode(code), JSON.stringify(code)).toBe(true);
    }
  });
});

describe('ProtocolError', () => {
  it('message is exactly `CODE description`', () => {
    const err = new ProtocolError('E_INVALID', 'invalid command FOO');
    expect(err.message).toBe('E_INVALID invalid command FOO');
    expect(err.code).toBe('E_INVALID');
    expect(err.description).toBe('invalid command FOO');
    expect(err.name).toBe('ProtocolError');
    expect(err).toBeInstanceOf(Error);
  });

  it('message equals the text of the error frame for the same code and description', () => {
    const err = new ProtocolError('E_BAD_TOPIC', 'PUB topic name "a b" is not valid');
    expect(encodeErrorFrame(err.code, err.description).subarray(8).toString()).toBe(err.message);
  });

  it('an empty description leaves just the code', () => {
    expect(new ProtocolError('E_BAD_PROTOCOL', '').message).toBe('E_BAD_PROTOCOL');
  });

  it('fatal follows the code by default', () => {
    for (const [code, fatal] of SPEC) {
      expect(new ProtocolError(code, 'x').fatal, code).toBe(fatal);
    }
  });

  it('fatal can be overridden', () => {
    expect(new ProtocolError('E_INVALID', 'x', false).fatal).toBe(false);
    expect(new ProtocolError('E_FIN_FAILED', 'x', true).fatal).toBe(true);
  });

  it('the description is kept verbatim, spaces and all', () => {
    const err = new ProtocolError('E_INVALID', '  two  spaces ');
    expect(err.message).toBe('E_INVALID   two  spaces ');
    expect(err.description).toBe('  two  spaces ');
  });
});

describe('ProtocolError.fromFrame', () => {
  it('splits an error frame payload at the first space', () => {
    const err = ProtocolError.fromFrame(Buffer.from('E_INVALID invalid command FOO'));
    expect(err).toBeInstanceOf(ProtocolError);
    expect(err.code).toBe('E_INVALID');
    expect(err.description).toBe('invalid command FOO');
    expect(err.message).toBe('E_INVALID invalid command FOO');
    expect(err.fatal).toBe(true);
  });

  it('non-fatal codes come back non-fatal', () => {
    for (const code of ['E_FIN_FAILED', 'E_REQ_FAILED', 'E_TOUCH_FAILED']) {
      const err = ProtocolError.fromFrame(Buffer.from(`${code} ${code.slice(2, -7)} 0123456789abcdef failed`));
      expect(err.code).toBe(code);
      expect(err.fatal).toBe(false);
    }
  });

  it('a payload that is only a code', () => {
    const err = ProtocolError.fromFrame(Buffer.from('E_BAD_PROTOCOL'));
    expect(err.code).toBe('E_BAD_PROTOCOL');
    expect(err.description).toBe('');
    expect(err.message).toBe('E_BAD_PROTOCOL');
    expect(err.fatal).toBe(true);
  });

  it('a trailing space gives an empty description', () => {
    const err = ProtocolError.fromFrame(Buffer.from('E_INVALID '));
    expect(err.code).toBe('E_INVALID');
    expect(err.description).toBe('');
  });

  it('round-trips the payload of encodeErrorFrame, byte for byte (latin1)', () => {
    const description = 'SUB channel name "caf\u00c3\u00a9" is not valid';
    const frame = encodeErrorFrame('E_BAD_CHANNEL', description);
    const err = ProtocolError.fromFrame(frame.subarray(8));
    expect(err.code).toBe('E_BAD_CHANNEL');
    expect(err.description).toBe(description);
    expect(Buffer.from(err.message, 'latin1').equals(frame.subarray(8))).toBe(true);
  });

  it('an empty payload', () => {
    const err = ProtocolError.fromFrame(Buffer.alloc(0));
    expect(err.code).toBe('E_INVALID');
    expect(err.description).toBe('');
    expect(err.fatal).toBe(true);
  });

  it('a code outside NSQ v1.3.0 list keeps code an ErrorCode and the whole text in the description', () => {
    const err = ProtocolError.fromFrame(Buffer.from('E_SOMETHING_NEW it broke'));
    expect(err.code).toBe('E_INVALID');
    expect(err.description).toBe('E_SOMETHING_NEW it broke');
    expect(err.message).toBe('E_INVALID E_SOMETHING_NEW it broke');
    expect(err.fatal).toBe(true);
  });
});
