/** Go's url.ParseQuery: NSQ answers 400 INVALID_REQUEST exactly when it fails (a `;`, a bad `%`). */
export type GoQuery = Map<string, string[]>;

export function parseGoQuery(rawQuery: string): GoQuery | null {
  const params: GoQuery = new Map();
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) return null;
    const eq = part.indexOf('=');
    const key = queryUnescape(eq < 0 ? part : part.slice(0, eq));
    const value = queryUnescape(eq < 0 ? '' : part.slice(eq + 1));
    if (key === null || value === null) return null;
    const list = params.get(key);
    if (list === undefined) params.set(key, [value]);
    else list.push(value);
  }
  return params;
}

function queryUnescape(s: string): string | null {
  return goUnescape(s, true);
}

/** `%XX` to bytes read as UTF-8 (leniently); null for a bad escape. */
export function goUnescape(s: string, plusIsSpace: boolean): string | null {
  if (!s.includes('%') && !(plusIsSpace && s.includes('+'))) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      const hex = s.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) return null;
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (c === 0x2b && plusIsSpace) {
      bytes.push(0x20);
    } else if (c < 0x100) {
      bytes.push(c); // node hands the raw request line over as latin1: one char per byte
    } else {
      for (const b of Buffer.from(s[i] as string, 'utf8')) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/** The first value of `key`, or null when the key is absent (Go's ReqParams.Get error). */
export function firstValue(query: GoQuery, key: string): string | null {
  const list = query.get(key);
  return list === undefined ? null : (list[0] as string);
}

/** NSQ's boolParams: true/1 and false/0; anything else is `fallback`. */
export function boolParam(value: string | null, fallback: boolean): boolean {
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  return fallback;
}
