/**
 * Message bodies for the load generators. `x`: `size` bytes of 'x' (what the raw scenarios send;
 * compresses to almost nothing). `json`: `count` different JSON-like event records (random ids,
 * hex tokens, numbers, a few repeated keys and strings), each cut or padded to exactly `size`
 * bytes — compressible about as much as typical application payloads, so snappy and deflate are
 * not flattered. Deterministic (seeded), so every run and process sends the same bytes.
 */
const EVENTS = ['page_view', 'add_to_cart', 'checkout', 'login', 'search', 'logout'];
const AGENTS = ['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (Macintosh)', 'curl/8.5.0', 'okhttp/4.12'];

/**
 * @param {number} count
 * @param {number} size bytes each
 * @param {string} [kind] 'x' or 'json'
 * @returns {Buffer[]}
 */
export function makeBodies(count, size, kind = 'x') {
  if (kind === 'x') return new Array(count).fill(Buffer.alloc(size, 'x'));
  if (kind !== 'json') throw new Error(`unknown body kind ${kind}`);
  let seed = 0x9e3779b9;
  const rand = () => {
    // xorshift32
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  /** @param {string[]} list */
  const pick = (list) => list[Math.floor(rand() * list.length)];
  /** @param {number} n */
  const hex = (n) => Array.from({ length: n }, () => Math.floor(rand() * 16).toString(16)).join('');
  const bodies = [];
  for (let i = 0; i < count; i++) {
    let text = '';
    while (text.length < size) {
      text +=
        `{"id":${Math.floor(rand() * 1e9)},"ts":${1_700_000_000_000 + Math.floor(rand() * 1e10)},` +
        `"event":"${pick(EVENTS)}","user":"u_${hex(8)}","session":"${hex(16)}",` +
        `"path":"/products/${Math.floor(rand() * 10_000)}","ua":"${pick(AGENTS)}",` +
        `"price":${(rand() * 500).toFixed(2)},"ok":${rand() < 0.9}}\n`;
    }
    bodies.push(Buffer.from(text.slice(0, size), 'latin1'));
  }
  return bodies;
}
