import { describe, expect, it } from 'vitest';
import { MESSAGE_ID_LENGTH, messageIdHex, writeMessageIdHex } from './message-id.js';

describe('message ID text', () => {
  it('is 16 lowercase hex characters, high half first, zero-padded', () => {
    expect(MESSAGE_ID_LENGTH).toBe(16);
    expect(messageIdHex(0, 0)).toBe('0000000000000000');
    expect(messageIdHex(0x18aa2c3a, 0xee269001)).toBe('18aa2c3aee269001');
    expect(messageIdHex(0xffffffff, 1)).toBe('ffffffff00000001');
  });

  it('writeMessageIdHex writes the same characters in place, leaving the bytes around them', () => {
    const halves = [
      [0, 0],
      [1, 0xffffffff],
      [0x18aa2c3a, 0xee269001],
      [0xdeadbeef, 0x0badf00d],
    ];
    for (const [hi, lo] of halves as [number, number][]) {
      const out = Buffer.alloc(MESSAGE_ID_LENGTH + 4, '-');
      writeMessageIdHex(out, 2, hi, lo);
      expect(out.toString('latin1')).toBe(`--${messageIdHex(hi, lo)}--`);
    }
  });
});
