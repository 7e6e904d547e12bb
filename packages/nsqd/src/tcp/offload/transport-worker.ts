/**
 * A transport worker: owns the TLS and compression layers of the connections the pool gives it.
 * The main thread sends socket reads and output flushes; this thread decrypts and decompresses
 * the first into plain command bytes, compresses and encrypts the second into socket bytes, and
 * sends each connection's results back once per turn of its event loop.
 */
import { Duplex } from 'node:stream';
import { createSecureContext, type SecureContext, TLSSocket } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import { type ByteStream, compressionLayer, type InputFilter, type OutputSink } from '@nsq-ts/protocol';
import { type FromWorker, joinOwned, type TlsFacts, type ToWorker } from './messages.js';
import { peerCommonName, type WorkerTlsOptions } from './tls-facts.js';

const port = parentPort;
if (port === null) throw new Error('transport-worker.js runs as a worker thread');
const tlsOptions = (workerData as { tls: WorkerTlsOptions | null }).tls;
const context: SecureContext | null = tlsOptions === null ? null : createSecureContext(tlsOptions);

const links = new Map<number, Link>();
const dirty = new Set<Link>();
let flushScheduled = false;

function post(msg: FromWorker, data: Buffer | null): void {
  if (data === null) port?.postMessage(msg);
  else port?.postMessage(msg, [data.buffer as ArrayBuffer]);
}

function flushAll(): void {
  flushScheduled = false;
  for (const link of dirty) link.flush();
  dirty.clear();
}

/** One connection's layers on this thread. */
class Link implements ByteStream {
  private wireParts: Buffer[] = [];
  private wireBytes = 0;
  private acked = 0;
  private plainParts: Buffer[] = [];
  private plainBytes = 0;
  private consumed = 0;
  private failed = false;
  private readonly raw: Duplex | null = null;
  private readonly tls: TLSSocket | null = null;
  private readonly output: OutputSink | null = null;
  private readonly input: InputFilter | null = null;
  readonly writableLength = 0;

  constructor(
    readonly id: number,
    open: Extract<ToWorker, { t: 'open' }>,
  ) {
    const onError = (err: Error): void => this.fail(err);
    if (open.tls) {
      if (context === null || tlsOptions === null) throw new Error('TLS is not configured');
      this.raw = new Duplex({
        read() {},
        write: (chunk: Buffer, _encoding, callback) => {
          this.write(chunk);
          callback();
        },
        final: (callback) => {
          this.control({ t: 'ended', id });
          callback();
        },
      });
      const tls = new TLSSocket(this.raw, {
        isServer: true,
        secureContext: context,
        requestCert: tlsOptions.requestCert,
        rejectUnauthorized: tlsOptions.rejectUnauthorized,
      });
      this.tls = tls;
      tls.on('error', onError);
      tls.on('data', (chunk: Buffer) => this.fromLayer(chunk));
      tls.on('end', () => this.control({ t: 'eof', id }));
      tls.once('secure', () => this.secure(tls));
    }
    const under: ByteStream = this.tls ?? this;
    if (open.compression !== null) {
      const layer = compressionLayer(open.compression, open.level, under, (data) => this.plain(data), onError);
      this.output = layer.output;
      this.input = layer.input;
    }
    if (open.rest.length > 0) this.received(Buffer.from(open.rest.buffer, open.rest.byteOffset, open.rest.length));
  }

  handle(msg: ToWorker): void {
    if (this.failed) return;
    switch (msg.t) {
      case 'in':
        this.received(Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.length));
        break;
      case 'out': {
        const data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.length);
        this.acked += data.length;
        this.markDirty();
        if (msg.bare || this.output === null) (this.tls ?? this).write(data);
        else this.output.write(data);
        break;
      }
      case 'eof':
        if (this.raw !== null) this.raw.push(null);
        else this.control({ t: 'eof', id: this.id });
        break;
      case 'end':
        if (this.output !== null) this.output.end();
        else (this.tls ?? this).end();
        break;
      default:
        break;
    }
  }

  /** Socket bytes for the layers (the ByteStream the outermost layer writes to). */
  write(data: Buffer): boolean {
    if (data.length > 0) {
      this.wireParts.push(data);
      this.wireBytes += data.length;
      this.markDirty();
    }
    return true;
  }

  /** Without TLS, the end of the output: everything before it has been handed over. */
  end(): void {
    this.control({ t: 'ended', id: this.id });
  }

  close(): void {
    this.failed = true;
    this.input?.close();
    this.tls?.destroy();
    dirty.delete(this);
    links.delete(this.id);
  }

  fail(err: Error): void {
    if (this.failed) return;
    this.control({ t: 'error', id: this.id, message: err.message });
    this.close();
  }

  /** Sends this turn's socket bytes and plain bytes, one message each. */
  flush(): void {
    if (this.wireBytes > 0 || this.acked > 0) {
      const data = this.wireBytes === 0 ? null : joinOwned(this.wireParts, this.wireBytes);
      post({ t: 'wire', id: this.id, data, acked: this.acked }, data);
      this.wireParts = [];
      this.wireBytes = 0;
      this.acked = 0;
    }
    if (this.plainBytes > 0 || this.consumed > 0) {
      const data = this.plainBytes === 0 ? null : joinOwned(this.plainParts, this.plainBytes);
      post({ t: 'plain', id: this.id, data, consumed: this.consumed }, data);
      this.plainParts = [];
      this.plainBytes = 0;
      this.consumed = 0;
    }
  }

  private received(data: Buffer): void {
    this.consumed += data.length;
    this.markDirty();
    if (this.raw !== null) this.raw.push(data);
    else this.fromLayer(data);
  }

  private fromLayer(data: Buffer): void {
    if (this.failed) return;
    if (this.input !== null) this.input.push(data);
    else this.plain(data);
  }

  private plain(data: Buffer): void {
    if (data.length === 0 || this.failed) return;
    this.plainParts.push(data);
    this.plainBytes += data.length;
    this.markDirty();
  }

  /** What came before a control message goes first. */
  private control(msg: FromWorker): void {
    this.flush();
    post(msg, null);
  }

  private secure(tls: TLSSocket): void {
    const hasPeerCert = Object.keys(tls.getPeerCertificate()).length > 0;
    if (tlsOptions?.requireCert && !hasPeerCert) {
      this.fail(new Error('client did not provide a certificate'));
      return;
    }
    const facts: TlsFacts = {
      cipher: tls.getCipher()?.standardName ?? '',
      protocol: tls.getProtocol(),
      alpn: tls.alpnProtocol || '',
      commonName: peerCommonName(tls),
      hasPeerCert,
    };
    this.control({ t: 'secure', id: this.id, ...facts });
  }

  private markDirty(): void {
    dirty.add(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }
}

post({ t: 'ready', id: 0 }, null);
port.on('message', (msg: ToWorker) => {
  if (msg.t === 'open') {
    try {
      links.set(msg.id, new Link(msg.id, msg));
    } catch (err) {
      post({ t: 'error', id: msg.id, message: (err as Error).message }, null);
    }
    return;
  }
  const link = links.get(msg.id);
  if (link === undefined) return;
  if (msg.t === 'close') {
    link.close();
    return;
  }
  try {
    link.handle(msg);
  } catch (err) {
    link.fail(err as Error);
  }
});
