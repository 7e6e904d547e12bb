import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { compressionLayer, type InputFilter, type OutputSink } from '@nsq-ts/protocol';
import type { Clock, TimerHandle } from '../clock.js';
import type { TlsSettings } from '../transport/tls-options.js';
import type { TlsFacts } from './offload/messages.js';
import { type OffloadedEvents, OffloadedLayers } from './offload/offloaded-layers.js';
import { peerCommonName } from './offload/tls-facts.js';
import type { TransportPool } from './offload/transport-pool.js';

/** nsqd gives the TLS handshake of an upgrade 5 s (nsq-spec §2.7). */
export const TLS_HANDSHAKE_TIMEOUT_MS = 5_000;
const EMPTY = Buffer.alloc(0);

/** The connection under the layers: a net.Socket, or any duplex that takes setNoDelay (tests). */
export type RawSocket = Duplex & Pick<Socket, 'setNoDelay'>;

/** What /stats reports of a TLS connection: a TLSSocket, or what a transport worker's told. */
export type TlsState = Pick<TLSSocket, 'getCipher' | 'getProtocol' | 'alpnProtocol'>;

/** What IDENTIFY negotiated, applied after its JSON reply has left in plaintext. */
export interface Upgrade {
  tls: boolean;
  compression: 'snappy' | 'deflate' | null;
  deflateLevel: number;
}

export interface TransportEvents {
  onPlain(chunk: Buffer): void;
  /** A layer is in place: frames go to `out` from now on, starting with its OK. */
  onLayer(out: OutputSink): void;
  onUpgradeFailed(err: Error): void;
  /** The peer ended its side of a plain connection (a TLS socket ends itself). */
  onEnd(): void;
  onDrain(): void;
  onClose(): void;
  onSocketError(err: Error): void;
}

/**
 * A connection's byte layers (nsq-spec §2.7): the socket, then TLS, then snappy or deflate,
 * each installed at the byte after the reply that negotiated it; bytes sent meanwhile are
 * parked for the new layers. A plain connection never touches the rest.
 */
export class Transport implements OffloadedEvents {
  out: OutputSink;
  tlsSocket: TlsState | null = null;
  /** The TLS peer certificate's common name ('' without one), as the auth server is told it. */
  commonName = '';
  snappy = false;
  deflate = false;
  /** Negotiated by IDENTIFY and not started yet: decoding stops until start(). */
  pending: Upgrade | null = null;
  private input: InputFilter | null = null;
  private parkedRaw: Buffer[] = [];
  private halted = false;
  private readonly onRawData: (chunk: Buffer) => void;
  /** The layers run in a transport worker (--transport-workers). */
  private offloaded: OffloadedLayers | null = null;
  private inlineTls = false;
  private handshakeTimer: TimerHandle | null = null;

  constructor(
    readonly socket: RawSocket,
    private readonly tls: TlsSettings | null,
    private readonly clock: Clock,
    private readonly events: TransportEvents,
    private readonly pool: TransportPool | null = null,
  ) {
    this.out = socket;
    this.onRawData = (chunk) => events.onPlain(chunk);
    socket.setNoDelay(true);
    socket.on('data', this.onRawData);
    socket.on('drain', () => events.onDrain());
    socket.on('error', (err) => events.onSocketError(err));
    socket.on('close', () => {
      this.offloaded?.release();
      events.onClose();
    });
    socket.on('end', () => {
      if (this.offloaded !== null) this.offloaded.eof();
      else if (this.tlsSocket === null) events.onEnd();
    });
  }

  /** An inline TLS socket ends itself when the peer ends; every other layer reports it (onEnd). */
  get endsItself(): boolean {
    return this.inlineTls;
  }

  /** Stops reading the socket (a congested or waiting connection) until resumeInput(). */
  pauseInput(): void {
    if (this.offloaded !== null) this.offloaded.inputPaused = true;
    this.socket.pause();
  }

  resumeInput(): void {
    if (this.offloaded !== null) this.offloaded.inputPaused = false;
    this.socket.resume();
  }

  /** Installs the pending layers; `rest` (the decoder's remainder) is the new layers' first input. */
  start(rest: Buffer): void {
    const upgrade = this.pending as Upgrade;
    if (this.pool?.usable) {
      this.startOffloaded(this.pool, upgrade, rest);
      return;
    }
    if (!upgrade.tls) {
      this.startCompression(upgrade, rest);
      return;
    }
    const settings = this.tls as TlsSettings;
    this.socket.off('data', this.onRawData);
    // Bytes the client sent after IDENTIFY are the start of its handshake: replay them first.
    const raw: Duplex = rest.length === 0 ? this.socket : prefixedStream(this.socket, rest);
    const tlsSocket = new TLSSocket(raw, {
      isServer: true,
      secureContext: settings.context,
      requestCert: settings.serverOptions.requestCert,
      rejectUnauthorized: settings.serverOptions.rejectUnauthorized,
    });
    const timer = this.clock.setTimer(
      () => this.events.onUpgradeFailed(new Error('TLS handshake timeout')),
      TLS_HANDSHAKE_TIMEOUT_MS,
    );
    tlsSocket.on('error', (err) => {
      this.clock.clearTimer(timer);
      this.events.onUpgradeFailed(err);
    });
    tlsSocket.on('close', () => this.events.onClose());
    tlsSocket.on('drain', () => this.events.onDrain());
    tlsSocket.on('data', (chunk: Buffer) => this.onLayerData(chunk));
    tlsSocket.once('secure', () => {
      this.clock.clearTimer(timer);
      if (this.halted) return;
      if (settings.requireCert && Object.keys(tlsSocket.getPeerCertificate()).length === 0) {
        this.events.onUpgradeFailed(new Error('client did not provide a certificate'));
        return;
      }
      this.tlsSocket = tlsSocket;
      this.inlineTls = true;
      this.commonName = peerCommonName(tlsSocket);
      this.out = tlsSocket;
      this.events.onLayer(tlsSocket);
      this.startCompression(upgrade, EMPTY);
    });
  }

  halt(): void {
    this.halted = true;
  }

  /** Halts, and ends the top layer once what was written is sent. */
  end(): void {
    this.halted = true;
    this.input?.close();
    this.out.end();
  }

  destroy(): void {
    if (this.tlsSocket instanceof TLSSocket) this.tlsSocket.destroy();
    this.socket.destroy();
  }

  onPlain(chunk: Buffer): void {
    if (!this.halted) this.events.onPlain(chunk);
  }

  onSecure(facts: TlsFacts): void {
    this.clearHandshakeTimer();
    const layers = this.offloaded;
    if (this.halted || layers === null) return;
    this.tlsSocket = {
      getCipher: () => ({ name: facts.cipher, standardName: facts.cipher, version: facts.protocol ?? '' }),
      getProtocol: () => facts.protocol,
      alpnProtocol: facts.alpn === '' ? false : facts.alpn,
    };
    this.commonName = facts.commonName;
    this.out = layers;
    layers.bare = true;
    this.events.onLayer(layers);
    layers.bare = false;
    const upgrade = this.pending as Upgrade;
    this.pending = null;
    if (upgrade.compression !== null) this.compressionLayer(upgrade, layers);
  }

  onLinkError(err: Error): void {
    this.clearHandshakeTimer();
    this.events.onUpgradeFailed(err);
  }

  onEof(): void {
    this.events.onEnd();
  }

  onDrain(): void {
    this.events.onDrain();
  }

  /** The layers go to a transport worker; this thread forwards socket reads and output flushes. */
  private startOffloaded(pool: TransportPool, upgrade: Upgrade, rest: Buffer): void {
    const layers = new OffloadedLayers(
      this.socket,
      pool,
      this,
      upgrade.tls,
      upgrade.compression,
      upgrade.deflateLevel,
      rest,
    );
    this.offloaded = layers;
    this.socket.off('data', this.onRawData);
    this.socket.on('data', (chunk: Buffer) => layers.input(chunk));
    if (upgrade.tls) {
      this.handshakeTimer = this.clock.setTimer(
        () => this.events.onUpgradeFailed(new Error('TLS handshake timeout')),
        TLS_HANDSHAKE_TIMEOUT_MS,
      );
      return;
    }
    this.pending = null;
    this.compressionLayer(upgrade, layers);
  }

  private compressionLayer(upgrade: Upgrade, layers: OffloadedLayers): void {
    this.snappy = upgrade.compression === 'snappy';
    this.deflate = upgrade.compression === 'deflate';
    this.out = layers;
    this.events.onLayer(layers);
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer !== null) this.clock.clearTimer(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  /** Snappy or deflate (if negotiated) over the current layer, then the parked bytes. */
  private startCompression(upgrade: Upgrade, rest: Buffer): void {
    // The socket, or the TLS socket once it is secure.
    const under = this.out;
    if (upgrade.compression !== null) {
      const onError = (err: Error): void => this.events.onUpgradeFailed(err);
      const onPlain = this.onRawData;
      this.snappy = upgrade.compression === 'snappy';
      this.deflate = upgrade.compression === 'deflate';
      const layer = compressionLayer(upgrade.compression, upgrade.deflateLevel, under, onPlain, onError);
      this.out = layer.output;
      this.input = layer.input;
      if (under === this.socket) {
        this.socket.off('data', this.onRawData);
        this.socket.on('data', (chunk: Buffer) => this.onLayerData(chunk));
      }
      this.events.onLayer(this.out);
    }
    this.pending = null;
    const parked = this.parkedRaw;
    this.parkedRaw = [];
    const input = this.input;
    if (rest.length > 0) parked.unshift(rest);
    for (const chunk of parked) {
      if (input !== null) input.push(chunk);
      else this.events.onPlain(chunk);
    }
  }

  /** Bytes from the top byte stream (TLS socket, or the socket under compression). */
  private onLayerData(chunk: Buffer): void {
    if (this.halted) return;
    if (this.pending !== null) this.parkedRaw.push(chunk);
    else if (this.input !== null) this.input.push(chunk);
    else this.events.onPlain(chunk);
  }
}

/** A duplex that yields `prefix` first, then `socket`'s data; writes go to `socket`. */
function prefixedStream(socket: RawSocket, prefix: Buffer): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  stream.push(prefix);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('close', () => stream.destroy());
  return stream;
}
