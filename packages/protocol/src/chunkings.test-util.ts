/**
 * Test fixtures fed to streaming decoders in every way a socket can cut them: whole, byte by
 * byte, split at every offset and (for small fixtures) at every pair of offsets. Chunks are
 * fresh copies, so a decoder cannot depend on the fixture's memory.
 */
export interface Chunking {
  label: string;
  chunks: Buffer[];
}

/** A fresh copy of `data[start, end)`. */
export function copy(data: Buffer, start: number, end: number): Buffer {
  return Buffer.from(data.subarray(start, end));
}

export function* chunkings(
  data: Buffer,
  options: { pairs?: boolean; pairsUpTo?: number; offsets?: Iterable<number> } = {},
): Generator<Chunking> {
  yield { label: 'whole', chunks: [copy(data, 0, data.length)] };
  const bytes: Buffer[] = [];
  for (let i = 0; i < data.length; i++) bytes.push(copy(data, i, i + 1));
  yield { label: 'byte by byte', chunks: bytes };
  const offsets = options.offsets ?? Array.from({ length: Math.max(0, data.length - 1) }, (_, i) => i + 1);
  for (const i of offsets) yield { label: `split at ${i}`, chunks: [copy(data, 0, i), copy(data, i, data.length)] };
  if (options.pairs ?? data.length <= (options.pairsUpTo ?? 200)) {
    for (let i = 1; i < data.length; i++) {
      for (let j = i + 1; j < data.length; j++) {
        yield {
          label: `split at ${i} and ${j}`,
          chunks: [copy(data, 0, i), copy(data, i, j), copy(data, j, data.length)],
        };
      }
    }
  }
}
