/** 16 lowercase hex characters of a 64-bit value, here as two 32-bit halves (nsq-spec §2.4). */
export const MESSAGE_ID_LENGTH = 16;

const HEX_BYTES = Buffer.from('0123456789abcdef', 'latin1');

export function messageIdHex(hi: number, lo: number): string {
  return hex8(hi) + hex8(lo);
}

/** Writes the 16 hex characters of an ID straight into `out` (no string on the hot path). */
export function writeMessageIdHex(out: Buffer, offset: number, hi: number, lo: number): void {
  for (let i = 7; i >= 0; i--) {
    out[offset + i] = HEX_BYTES[hi & 0xf] as number;
    out[offset + 8 + i] = HEX_BYTES[lo & 0xf] as number;
    hi >>>= 4;
    lo >>>= 4;
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}
