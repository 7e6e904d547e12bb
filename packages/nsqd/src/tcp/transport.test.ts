import { rmSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import {
  DeflateOutput,
  deflateInput,
  encodeCommand,
  OK_FRAME,
  type OutputSink,
  SnappyOutput,
  snappyInput,
} from '@nsq-ts/protocol';
import { eventually } from '@nsq-ts/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCerts, type TestCerts } from '../../../../test/support/certs.js';
import { type Clock, systemClock } from '../clock.js';
import { ManualClock } from '../clock.test-util.js';
import { defaultNsqdOptions } from '../options.js';
import { loadTlsSettings, type TlsSettings } from '../transport/tls-options.js';
import {
  type RawSocket,
  TLS_HANDSHAKE_TIMEOUT_MS,
  Transport,
  type TransportEvents,
  type Upgrade,
} from './transport.js';

/** Two in-memory duplexes joined back to back: what one writes, the other reads. */
function duplexPair(): [RawSocket, Duplex] {
  const ends: Duplex[] = [];
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        peer().push(chunk);
        callback();
      },
      final(callback) {
        peer().push(null);
        callback();
      },
    });
  ends.push(
    make(() => ends[1] as Duplex),
    make(() => ends[0] as Duplex),
  );
  const server = Object.assign(ends[0] as Duplex, { setNoDelay: () => server });
  return [server as unknown as RawSocket, ends[1] as Duplex];
}

/** Records what the transport reports; a layer's OK is written through it, as ClientV2 does. */
class Recorder implements TransportEvents {
  readonly log: string[] = [];
  readonly plain: Buffer[] = [];
  readonly layers: OutputSink[] = [];

  get text(): string {
    return Buffer.concat(this.plain).toString('latin1');
  }

  onPlain = (chunk: Buffer): void => {
    this.plain.push(Buffer.from(chunk));
  };

  onLayer(out: OutputSink): void {
    this.log.push(`layer ${this.plain.length}`);
    this.layers.push(out);
    out.cork();
    out.write(OK_FRAME);
    out.uncork();
  }

  onUpgradeFailed(err: Error): void {
    this.log.push(`failed ${err.message}`);
  }

  onEnd(): void {
    this.log.push('end');
  }

  onDrain(): void {}

  onClose(): void {
    this.log.push('close');
  }

  onSocketError(err: Error): void {
    this.log.push(`error ${err.message}`);
  }
}

/** Collects what a compression layer on the client's side makes of `text`. */
function compressed(kind: 'snappy' | 'deflate', text: string): Buffer {
  const parts: Buffer[] = [];
  const inner = { write: (d: Buffer) => parts.push(d) > 0, end: () => undefined, writableLength: 0 };
  const out = kind === 'snappy' ? new SnappyOutput(inner) : new DeflateOutput(inner, 6);
  out.write(Buffer.from(text));
  return Buffer.concat(parts);
}

/** What the server's side sent, read as the client reads it after the upgrade. */
function received(kind: 'snappy' | 'deflate', bytes: Buffer): string {
  const plain: Buffer[] = [];
  const input = kind === 'snappy' ? snappyInput : deflateInput;
  const filter = input(
    (d) => plain.push(Buffer.from(d)),
    (err) => {
      throw err;
    },
  );
  filter.push(bytes);
  return Buffer.concat(plain).toString('latin1');
}

function collect(stream: Duplex): Buffer[] {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return chunks;
}

/** A transport whose upgrade started with nothing received after the negotiating command. */
function upgrading(upgrade: Upgrade, clock: Clock = systemClock) {
  const [server, client] = duplexPair();
  const events = new Recorder();
  const transport = new Transport(server, upgrade.tls ? tls : null, clock, events);
  transport.pending = upgrade;
  transport.start(Buffer.alloc(0));
  return { client, events, transport };
}

let certs: TestCerts;
let tls: TlsSettings;

beforeAll(() => {
  certs = makeTestCerts();
  tls = loadTlsSettings({
    ...defaultNsqdOptions(),
    tlsCert: certs.serverCertFile,
    tlsKey: certs.serverKeyFile,
  }) as TlsSettings;
});

afterAll(() => rmSync(certs.dir, { recursive: true, force: true }));

describe('Transport', () => {
  it('passes a plain connection straight through and reports its end', async () => {
    const [server, client] = duplexPair();
    const events = new Recorder();
    const transport = new Transport(server, null, systemClock, events);
    client.write('NOP\n');
    client.end();
    await eventually(() => expect(events.log).toEqual(['end']));
    expect(events.text).toBe('NOP\n');
    expect(transport.out).toBe(server);
  });

  for (const kind of ['snappy', 'deflate'] as const) {
    it(`${kind}: installs the layer at the byte after the negotiating command`, async () => {
      const [server, client] = duplexPair();
      const fromServer = collect(client);
      const events = new Recorder();
      const transport = new Transport(server, null, systemClock, events);
      transport.pending = { tls: false, compression: kind, deflateLevel: 6 };
      // The client sent its first compressed bytes in the chunk that carried IDENTIFY: the
      // decoder hands them over as its remainder.
      const stream = compressed(kind, 'NOP\nRDY 1\n');
      const cut = Math.floor(stream.length / 2);
      transport.start(stream.subarray(0, cut));
      expect(transport.pending).toBeNull();
      expect(transport.snappy).toBe(kind === 'snappy');
      expect(transport.deflate).toBe(kind === 'deflate');
      expect(events.log).toEqual(['layer 0']);
      client.write(stream.subarray(cut));
      await eventually(() => expect(events.text).toBe('NOP\nRDY 1\n'));
      // The layer's OK went out compressed.
      await eventually(() => expect(received(kind, Buffer.concat(fromServer))).toBe(OK_FRAME.toString('latin1')));
      expect(transport.out).toBe(events.layers[0]);
    });
  }

  it('reports corrupt compressed input as a failed upgrade', async () => {
    const { client, events } = upgrading({ tls: false, compression: 'snappy', deflateLevel: 6 });
    client.write(Buffer.from('definitely not a snappy stream'));
    await eventually(() => expect(events.log.some((l) => l.startsWith('failed '))).toBe(true));
  });

  it('tls + snappy: replays the handshake bytes that came with IDENTIFY, then layers snappy over TLS', async () => {
    const [server, client] = duplexPair();
    const events = new Recorder();
    const transport = new Transport(server, tls, systemClock, events);
    // Before start() the client's first handshake bytes arrive as plain input, as they reach
    // the decoder in the chunk after IDENTIFY.
    const tlsClient: TLSSocket = tlsConnect({ socket: client, ca: certs.ca, servername: 'localhost' });
    await eventually(() => expect(events.plain.length).toBeGreaterThan(0));
    const hello = Buffer.concat(events.plain.splice(0));
    transport.pending = { tls: true, compression: 'snappy', deflateLevel: 6 };
    transport.start(hello);
    const fromServer = collect(tlsClient);
    await eventually(() => expect(events.log).toEqual(['layer 0', 'layer 0']));
    expect(transport.tlsSocket).not.toBeNull();
    expect(transport.snappy).toBe(true);
    // TLS's OK in plaintext inside TLS, then snappy's OK compressed.
    await eventually(() => expect(Buffer.concat(fromServer).length).toBeGreaterThan(OK_FRAME.length));
    const all = Buffer.concat(fromServer);
    expect(all.subarray(0, OK_FRAME.length).equals(OK_FRAME)).toBe(true);
    expect(received('snappy', all.subarray(OK_FRAME.length))).toBe(OK_FRAME.toString('latin1'));
    tlsClient.write(compressed('snappy', encodeCommand('NOP', []).toString('latin1')));
    await eventually(() => expect(events.text).toBe('NOP\n'));
    transport.destroy();
    tlsClient.destroy();
  });

  it('gives the TLS handshake 5 s, on the broker clock', () => {
    const clock = new ManualClock();
    const { events, transport } = upgrading({ tls: true, compression: null, deflateLevel: 6 }, clock);
    clock.advance(TLS_HANDSHAKE_TIMEOUT_MS - 1);
    expect(events.log).toEqual([]);
    clock.advance(1);
    expect(events.log).toEqual(['failed TLS handshake timeout']);
    transport.destroy();
  });

  it('passes nothing on once halted', async () => {
    const { client, events, transport } = upgrading({ tls: false, compression: 'deflate', deflateLevel: 6 });
    transport.halt();
    client.write(compressed('deflate', 'NOP\n'));
    client.end();
    // The end of the stream comes after its data.
    await eventually(() => expect(events.log).toEqual(['layer 0', 'end']));
    expect(events.plain).toEqual([]);
  });
});
