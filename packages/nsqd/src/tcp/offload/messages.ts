/**
 * What the main thread and a transport worker say to each other over its port. Every message
 * carries a whole socket read, a whole output flush, or one batch of a connection's results:
 * never one message per NSQ message.
 */

/** Main thread → worker. */
export type ToWorker =
  /** The connection's layers start; `rest` is what the client sent after IDENTIFY. */
  | {
      t: 'open';
      id: number;
      tls: boolean;
      compression: 'snappy' | 'deflate' | null;
      level: number;
      rest: Uint8Array;
    }
  /** A socket read: ciphertext, or compressed bytes. */
  | { t: 'in'; id: number; data: Uint8Array }
  /** One output flush of frames; `bare`: over TLS but not compressed (the TLS upgrade's OK). */
  | { t: 'out'; id: number; data: Uint8Array; bare: boolean }
  /** The peer ended its side. */
  | { t: 'eof'; id: number }
  /** Send what is buffered, close TLS, then say 'ended'. */
  | { t: 'end'; id: number }
  | { t: 'close'; id: number };

/** The TLS facts nsqd reports (/stats, the auth server). */
export interface TlsFacts {
  cipher: string;
  protocol: string | null;
  alpn: string;
  commonName: string;
  hasPeerCert: boolean;
}

/** Worker → main thread. */
export type FromWorker =
  | { t: 'ready'; id: 0 }
  /** Bytes for the socket; `acked` output bytes (of 'out' data) are done with. */
  | { t: 'wire'; id: number; data: Uint8Array | null; acked: number }
  /** Decoded input; `consumed` socket bytes (of 'in' data) are done with. */
  | { t: 'plain'; id: number; data: Uint8Array | null; consumed: number }
  | ({ t: 'secure'; id: number } & TlsFacts)
  | { t: 'error'; id: number; message: string }
  /** The peer's end of stream, after all its bytes. */
  | { t: 'eof'; id: number }
  /** Everything written was sent and TLS is closed: end the socket. */
  | { t: 'ended'; id: number };

/**
 * A buffer that owns its whole ArrayBuffer, so it can be transferred instead of copied: `data`
 * itself when it does (a socket read nobody else holds), else a copy.
 */
export function owned(data: Buffer): Buffer {
  if (data.byteOffset === 0 && data.buffer.byteLength === data.length) return data;
  const copy = Buffer.allocUnsafeSlow(data.length);
  data.copy(copy);
  return copy;
}

/**
 * `parts` copied into one buffer that owns its memory: always a copy, since a part may be memory
 * its writer keeps (a message body held for redelivery, an encoder's scratch buffer).
 */
export function joinOwned(parts: Buffer[], total: number): Buffer {
  const out = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (const p of parts) at += p.copy(out, at);
  return out;
}
