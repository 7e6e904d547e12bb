import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

const CRC32_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = (CRC32_TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** NSQ's default --node-id: crc32_ieee(md5(hostname)) % 1024 (nsq-spec §2.4). */
export function defaultNodeId(host: string = hostname()): number {
  return crc32(createHash('md5').update(host).digest()) % 1024;
}
