// Go formatting in NSQ's error texts, byte for byte. Strings are byte strings (latin1), as the TCP layer decodes lines.

/** Go's `%q` of a byte string: printable UTF-8 kept; other control and invalid bytes as `\xNN`. */
export function goQuote(bytes: string): string {
  let out = '"';
  const buf = Buffer.from(bytes, 'latin1');
  let i = 0;
  while (i < buf.length) {
    const b = buf[i] as number;
    if (b < 0x80) {
      out += quoteAscii(b);
      i++;
      continue;
    }
    const len = utf8SequenceLength(buf, i);
    if (len === 0) {
      out += `\\x${hex2(b)}`;
      i++;
      continue;
    }
    const rune = buf.toString('utf8', i, i + len);
    const cp = rune.codePointAt(0) as number;
    // Go's IsPrint: letters, marks, numbers, punctuation, symbols and U+0020.
    if (/^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(rune)) out += buf.toString('latin1', i, i + len);
    else if (cp < 0x10000) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
    i += len;
  }
  return `${out}"`;
}

const ESCAPES: Record<number, string> = { 7: '\\a', 8: '\\b', 12: '\\f', 10: '\\n', 13: '\\r', 9: '\\t', 11: '\\v' };

function quoteAscii(b: number): string {
  if (b === 0x22) return '\\"';
  if (b === 0x5c) return '\\\\';
  if (b >= 0x20 && b < 0x7f) return String.fromCharCode(b);
  return ESCAPES[b] ?? `\\x${hex2(b)}`;
}

function hex2(b: number): string {
  return b.toString(16).padStart(2, '0');
}

/** Length of a valid UTF-8 sequence at `i`, or 0 when the byte does not start one. */
function utf8SequenceLength(buf: Buffer, i: number): number {
  const b = buf[i] as number;
  const len = b >= 0xf0 && b <= 0xf4 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 && b < 0xe0 ? 2 : 0;
  if (len === 0 || i + len > buf.length) return 0;
  for (let k = 1; k < len; k++) if (((buf[i + k] as number) & 0xc0) !== 0x80) return 0;
  const cp = buf.toString('utf8', i, i + len).codePointAt(0) as number;
  // Reject overlong forms, surrogates and values past U+10FFFF (the decoder yields U+FFFD).
  if (cp === 0xfffd && !(b === 0xef && buf[i + 1] === 0xbf && buf[i + 2] === 0xbd)) return 0;
  return len;
}

/**
 * NSQ's ByteToBase10: digits only, `""` is 0. Go's uint64 wraps before the int64 cast, so long input
 * takes BigInt (`RDY 18446744073709551615` is -1 there, so out of range).
 */
export function parseBase10(text: string): number | null {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  if (text.length <= 15) return n; // below 2^53: exact
  return Number(BigInt.asIntN(64, BigInt(text)));
}

/** goQuote for an ordinary (UTF-16) string, such as a command-line argument. */
export function goQuoteText(text: string): string {
  return Buffer.from(goQuote(Buffer.from(text, 'utf8').toString('latin1')), 'latin1').toString('utf8');
}
