import { connect as netConnect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { eventually, ManualClock, RawV1Client, startLookupd, type TestLookupd } from '@nsq-ts/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// Raw-byte tests of nsqlookupd's TCP protocol V1 (nsq-spec §4.1): `[4-byte BE size][data]`
// replies with no frame type, every error fatal.

const PEER = {
  broadcast_address: '127.0.0.1',
  hostname: 'nsqd-host',
  tcp_port: 4150,
  http_port: 4151,
  version: '1.3.0',
};

/** `[size][data]` as the server writes it. */
function framed(text: string): Buffer {
  const data = Buffer.from(text, 'latin1');
  const size = Buffer.alloc(4);
  size.writeUInt32BE(data.length, 0);
  return Buffer.concat([size, data]);
}

let lookupd: TestLookupd;
const clients: RawV1Client[] = [];

beforeEach(async () => {
  lookupd = await startLookupd({ broadcastAddress: 'lookupd.example' });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await lookupd.close();
});

async function connect(options: { magic?: boolean } = {}): Promise<RawV1Client> {
  const c = await RawV1Client.connect(lookupd.tcpAddress, options);
  clients.push(c);
  return c;
}

async function identified(): Promise<RawV1Client> {
  const c = await connect();
  c.identify(PEER);
  await c.read();
  return c;
}

async function get(path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`http://${lookupd.httpAddress}${path}`);
  return { status: res.status, body: await res.json() };
}

/** Expects exactly one fatal error reply, byte for byte, and the server closing. */
async function expectFatal(c: RawV1Client, text: string): Promise<void> {
  await c.waitClosed();
  expect(Buffer.concat(c.received)).toEqual(framed(text));
}

describe('magic', () => {
  it('answers a wrong magic with a size-prefixed E_BAD_PROTOCOL and closes', async () => {
    const c = await connect({ magic: false });
    c.write('  V2');
    await expectFatal(c, 'E_BAD_PROTOCOL');
  });

  it('accepts the magic split across writes', async () => {
    const c = await connect({ magic: false });
    c.write(' ');
    c.write(' V');
    c.write('1PING\n');
    expect(await c.readText()).toBe('OK');
  });
});

describe('PING', () => {
  it('answers OK before IDENTIFY', async () => {
    const c = await connect();
    c.write('PING\n');
    expect(Buffer.concat([await c.read()])).toEqual(Buffer.from('OK'));
    expect(Buffer.concat(c.received)).toEqual(framed('OK'));
  });

  it('refreshes the producer last-update time', async () => {
    const c = await identified();
    const peer = [...lookupd.lookupd.db.findProducers('client', '', '')][0];
    peer.peerInfo.lastUpdateMs -= 60_000;
    const before = peer.peerInfo.lastUpdateMs;
    c.write('PING\n');
    expect(await c.readText()).toBe('OK');
    expect(peer.peerInfo.lastUpdateMs).toBeGreaterThan(before + 50_000);
  });

  it('answers pipelined commands in order, byte by byte', async () => {
    const c = await connect();
    for (const b of Buffer.from('PING\nPING\r\n  PING  \n')) c.write(Buffer.from([b]));
    expect([await c.readText(), await c.readText(), await c.readText()]).toEqual(['OK', 'OK', 'OK']);
  });
});

describe('IDENTIFY', () => {
  it('replies with the lookupd JSON, keys sorted as Go marshals a map', async () => {
    const c = await connect();
    c.identify(PEER);
    const reply = await c.readText();
    const [, httpPort] = lookupd.httpAddress.split(':');
    const [, tcpPort] = lookupd.tcpAddress.split(':');
    expect(reply).toBe(
      `{"broadcast_address":"lookupd.example","hostname":${JSON.stringify(hostname())},"http_port":${httpPort},"tcp_port":${tcpPort},"version":"1.3.0"}`,
    );
  });

  it('registers the client, keyed by its peer address', async () => {
    const c = await identified();
    const local = `127.0.0.1:${c.socket.localPort}`;
    const { body } = await get('/nodes');
    expect(body).toEqual({
      producers: [{ remote_address: local, ...PEER, tombstones: [], topics: [] }],
    });
  });

  it('identifies a peer of a dual-stack listener by its IPv4 address, as Go does', async () => {
    const dual = await startLookupd({ tcpAddress: ':0' });
    try {
      const port = dual.tcpAddress.slice(dual.tcpAddress.lastIndexOf(':') + 1);
      const c = await RawV1Client.connect(`127.0.0.1:${port}`);
      clients.push(c);
      c.identify(PEER);
      await c.read();
      const peer = dual.lookupd.db.findProducers('client', '', '')[0];
      expect(peer?.peerInfo.remoteAddress).toBe(`127.0.0.1:${c.socket.localPort}`);
    } finally {
      await dual.close();
    }
  });

  it('accepts keys in any case and ignores unknown ones', async () => {
    const c = await connect();
    c.identify('{"BROADCAST_ADDRESS":"h","Tcp_Port":1,"http_port":2,"version":"x","topology_zone":"z","x":[1]}');
    expect(await c.readText()).toMatch(/^\{"broadcast_address"/);
  });

  it.each([
    ['broadcast_address', { ...PEER, broadcast_address: '' }],
    ['tcp_port', { ...PEER, tcp_port: 0 }],
    ['http_port', { ...PEER, http_port: undefined }],
    ['version', { ...PEER, version: '' }],
  ])('refuses a body without %s', async (_field, body) => {
    const c = await connect();
    c.identify(body);
    await expectFatal(c, 'E_BAD_BODY IDENTIFY missing fields');
  });

  it('treats a null body as all fields missing', async () => {
    const c = await connect();
    c.identify('null');
    await expectFatal(c, 'E_BAD_BODY IDENTIFY missing fields');
  });

  it.each([
    ['invalid JSON', '{"broadcast_address":'],
    ['an empty body', ''],
    ['an array', '[]'],
    ['a string port', '{"broadcast_address":"h","tcp_port":"4150","http_port":1,"version":"v"}'],
    ['a fractional port', '{"broadcast_address":"h","tcp_port":4150.0,"http_port":1,"version":"v"}'],
    ['a numeric version', '{"broadcast_address":"h","tcp_port":1,"http_port":1,"version":1}'],
  ])('refuses %s', async (_what, body) => {
    const c = await connect();
    c.identify(body);
    await expectFatal(c, 'E_BAD_BODY IDENTIFY failed to decode JSON body');
  });

  it('refuses a second IDENTIFY before reading its body', async () => {
    const c = await identified();
    c.received.length = 0;
    c.write('IDENTIFY\n');
    await expectFatal(c, 'E_INVALID cannot IDENTIFY again');
  });

  it('answers a body size cut short by the peer closing its side', async () => {
    const c = await connect();
    c.write(Buffer.from('IDENTIFY\n\x00\x00', 'latin1'));
    c.socket.end();
    await expectFatal(c, 'E_BAD_BODY IDENTIFY failed to read body size');
  });

  it('answers a body cut short by the peer closing its side', async () => {
    const c = await connect();
    c.write(Buffer.from('IDENTIFY\n\x00\x00\x00\x10{"a"', 'latin1'));
    c.socket.end();
    await expectFatal(c, 'E_BAD_BODY IDENTIFY failed to read body');
  });

  it('refuses a negative or oversized body size before buffering', async () => {
    const c = await connect();
    c.write(Buffer.from('IDENTIFY\n\xff\xff\xff\xff', 'latin1'));
    await expectFatal(c, 'E_BAD_BODY IDENTIFY invalid body size -1');
    const d = await connect();
    d.write(Buffer.from('IDENTIFY\n\x7f\xff\xff\xff', 'latin1'));
    await expectFatal(d, `E_BAD_BODY IDENTIFY body too big ${2 ** 31 - 1} > ${1024 * 1024}`);
  });

  it('reads a body split at every byte', async () => {
    const c = await connect();
    const body = Buffer.from(JSON.stringify(PEER));
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length, 0);
    for (const b of Buffer.concat([Buffer.from('IDENTIFY\n'), size, body, Buffer.from('PING\n')])) {
      c.write(Buffer.from([b]));
    }
    expect(await c.readText()).toMatch(/^\{"broadcast_address"/);
    expect(await c.readText()).toBe('OK');
  });
});

describe('REGISTER and UNREGISTER', () => {
  it.each(['REGISTER', 'UNREGISTER'])('%s requires IDENTIFY', async (command) => {
    const c = await connect();
    c.write(`${command} t\n`);
    await expectFatal(c, 'E_INVALID client must IDENTIFY');
  });

  it.each(['REGISTER', 'UNREGISTER'])('%s needs a topic', async (command) => {
    const c = await identified();
    c.received.length = 0;
    c.write(`${command}\n`);
    await expectFatal(c, `E_INVALID ${command} insufficient number of params`);
  });

  it.each(['REGISTER', 'UNREGISTER'])('%s checks the topic name', async (command) => {
    const c = await identified();
    c.received.length = 0;
    c.write(`${command} bad/topic\n`);
    await expectFatal(c, `E_BAD_TOPIC ${command} topic name 'bad/topic' is not valid`);
  });

  it.each(['REGISTER', 'UNREGISTER'])('%s checks the channel name', async (command) => {
    const c = await identified();
    c.received.length = 0;
    c.write(`${command} t ${'c'.repeat(65)}\n`);
    await expectFatal(c, `E_BAD_CHANNEL ${command} channel name '${'c'.repeat(65)}' is not valid`);
  });

  it('quotes the raw bytes of a bad name', async () => {
    const c = await identified();
    c.received.length = 0;
    c.write(Buffer.from('REGISTER t\xe9\n', 'latin1'));
    await expectFatal(c, "E_BAD_TOPIC REGISTER topic name 't\xe9' is not valid");
  });

  it('REGISTER with a channel registers the channel and the topic; idempotent', async () => {
    const c = await identified();
    c.write('REGISTER t c\nREGISTER t c\nREGISTER t2\n');
    expect([await c.readText(), await c.readText(), await c.readText()]).toEqual(['OK', 'OK', 'OK']);
    expect((await get('/topics')).body).toEqual({ topics: ['t', 't2'] });
    expect((await get('/channels?topic=t')).body).toEqual({ channels: ['c'] });
    const lookup = (await get('/lookup?topic=t')).body as { producers: unknown[] };
    expect(lookup.producers).toHaveLength(1);
  });

  it('UNREGISTER of a channel keeps a durable channel key and drops an ephemeral one', async () => {
    const c = await identified();
    c.write('REGISTER t c\nREGISTER t e#ephemeral\nUNREGISTER t c\nUNREGISTER t e#ephemeral\n');
    for (let i = 0; i < 4; i++) expect(await c.readText()).toBe('OK');
    expect((await get('/channels?topic=t')).body).toEqual({ channels: ['c'] });
    expect((await get('/lookup?topic=t')).body).toMatchObject({ channels: ['c'] });
  });

  it('UNREGISTER of a topic removes the producer from it and all its channels', async () => {
    const c = await identified();
    c.write('REGISTER t c\nUNREGISTER t\n');
    expect([await c.readText(), await c.readText()]).toEqual(['OK', 'OK']);
    expect((await get('/lookup?topic=t')).body).toEqual({ channels: ['c'], producers: [] });
    expect((await get('/topics')).body).toEqual({ topics: ['t'] });
  });

  it('UNREGISTER of an ephemeral topic removes its registration with its last producer', async () => {
    const c = await identified();
    c.write('REGISTER t#ephemeral\nUNREGISTER t#ephemeral\n');
    expect([await c.readText(), await c.readText()]).toEqual(['OK', 'OK']);
    expect((await get('/topics')).body).toEqual({ topics: [] });
  });

  it('a double space makes an empty channel: only the topic is registered', async () => {
    const c = await identified();
    c.write('REGISTER t  c\n');
    expect(await c.readText()).toBe('OK');
    expect((await get('/channels?topic=t')).body).toEqual({ channels: [] });
  });

  it('a disconnect removes the producer from every registration but keeps the keys', async () => {
    const c = await identified();
    c.write('REGISTER t c\n');
    expect(await c.readText()).toBe('OK');
    c.close();
    await eventually(async () => expect((await get('/nodes')).body).toEqual({ producers: [] }));
    expect((await get('/lookup?topic=t')).body).toEqual({ channels: ['c'], producers: [] });
  });
});

describe('other input', () => {
  it('refuses an unknown command', async () => {
    const c = await connect();
    c.write('FOO bar\n');
    await expectFatal(c, 'E_INVALID invalid command FOO');
  });

  it('refuses an empty line as the empty command', async () => {
    const c = await connect();
    c.write('\n');
    await expectFatal(c, 'E_INVALID invalid command ');
  });

  it('ignores everything after a fatal error', async () => {
    const c = await connect();
    c.write('NOPE\nPING\nPING\n');
    await expectFatal(c, 'E_INVALID invalid command NOPE');
  });

  it('refuses a line longer than 16 KiB', async () => {
    const c = await connect();
    c.write('x'.repeat(16 * 1024 + 1));
    await expectFatal(c, 'E_INVALID command line too long (max 16384 bytes)');
  });
});

describe('read deadline (--tcp-read-timeout, an nsq-ts extension)', () => {
  // The deadline runs on a clock the test moves: a timer firing is observed synchronously as the
  // server destroying its side of the connection.
  const DEADLINE_MS = 60_000;

  const closers: Array<() => unknown> = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });

  async function lookupdWithDeadline(tcpReadTimeoutMs = DEADLINE_MS): Promise<{ l: TestLookupd; clock: ManualClock }> {
    const clock = new ManualClock();
    const l = await startLookupd({ tcpReadTimeoutMs }, clock);
    closers.push(() => l.close());
    return { l, clock };
  }

  /** Connects and waits until the server holds the connection; returns the server's socket too. */
  async function connectTo(l: TestLookupd, options: { magic?: boolean } = {}): Promise<[RawV1Client, Socket]> {
    const c = await RawV1Client.connect(l.tcpAddress, options);
    clients.push(c);
    const magicBytes = options.magic === false ? 0 : 4;
    return [c, await serverSocketOf(l, c, magicBytes)];
  }

  /** The server's side of `c`, once it has read `bytes` from it. */
  async function serverSocketOf(l: TestLookupd, c: RawV1Client, bytes: number): Promise<Socket> {
    let socket: Socket | undefined;
    await eventually(() => {
      socket = [...l.lookupd.clients].find((s) => s.socket.remotePort === c.socket.localPort)?.socket;
      expect(socket?.bytesRead).toBe(bytes);
    });
    return socket as Socket;
  }

  async function getFrom(l: TestLookupd, path: string): Promise<unknown> {
    return (await fetch(`http://${l.httpAddress}${path}`)).json();
  }

  /** Moves the clock to a millisecond short of the deadline, then onto it: `c` is cut, without a reply. */
  async function expectCutAtDeadline(clock: ManualClock, server: Socket, c: RawV1Client, leftMs = DEADLINE_MS) {
    clock.advance(leftMs - 1);
    expect(server.destroyed).toBe(false);
    clock.advance(1);
    expect(server.destroyed).toBe(true);
    await c.waitClosed(5_000);
    expect(c.pending()).toEqual([]);
  }

  it('closes a connection that sends nothing, not even the magic', async () => {
    const { l, clock } = await lookupdWithDeadline();
    const [c, server] = await connectTo(l, { magic: false });
    await expectCutAtDeadline(clock, server, c);
    await eventually(() => expect(l.lookupd.clients.size).toBe(0));
  });

  it('closes a connection whose IDENTIFY body never comes, registering nothing', async () => {
    const { l, clock } = await lookupdWithDeadline();
    const [c] = await connectTo(l);
    clock.advance(DEADLINE_MS / 2);
    const partial = Buffer.from('IDENTIFY\n\x00\x00\x00\x40{"broadcast_address":', 'latin1');
    c.write(partial);
    const server = await serverSocketOf(l, c, 4 + partial.length);
    // The IDENTIFY line alone does not move the deadline, which still counts from the magic.
    await expectCutAtDeadline(clock, server, c, DEADLINE_MS / 2);
    expect(await getFrom(l, '/nodes')).toEqual({ producers: [] });
  });

  it('closes a peer that dribbles a line: bytes keep coming but no command completes', async () => {
    const { l, clock } = await lookupdWithDeadline();
    const [c, server] = await connectTo(l);
    // One byte every quarter deadline: each chunk is well within the deadline, the line never is.
    for (let i = 1; i <= 3; i++) {
      c.write(i === 1 ? 'P' : ' ');
      await serverSocketOf(l, c, 4 + i);
      clock.advance(DEADLINE_MS / 4);
    }
    await expectCutAtDeadline(clock, server, c, DEADLINE_MS / 4);
  });

  it('keeps a registered nsqd that PINGs within the deadline, and drops it once it stops', async () => {
    const { l, clock } = await lookupdWithDeadline();
    const [c, server] = await connectTo(l);
    c.identify(PEER);
    await c.read();
    c.write('REGISTER t c\n');
    expect(await c.readText()).toBe('OK');
    for (let i = 0; i < 3; i++) {
      clock.advance(DEADLINE_MS - 1);
      c.write('PING\n');
      expect(await c.readText()).toBe('OK');
    }
    expect(server.destroyed).toBe(false);
    expect(await getFrom(l, '/lookup?topic=t')).toMatchObject({ channels: ['c'], producers: [PEER] });

    await expectCutAtDeadline(clock, server, c);
    // As on any disconnect: the producer leaves every registration, the keys stay.
    await eventually(async () =>
      expect(await getFrom(l, '/lookup?topic=t')).toEqual({ channels: ['c'], producers: [] }),
    );
  });

  it('destroys a connection after a fatal error once the deadline passes, if the peer never closes its side', async () => {
    const { l, clock } = await lookupdWithDeadline();
    const [host, port] = l.tcpAddress.split(':') as [string, string];
    const socket: Socket = netConnect({ host, port: Number(port), allowHalfOpen: true });
    closers.push(() => socket.destroy());
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    let serverEnded = false;
    socket.on('end', () => {
      serverEnded = true;
    });
    socket.on('data', () => undefined);
    socket.write('  V1NOPE\n');
    await eventually(() => expect(serverEnded).toBe(true));
    // The server has ended its side; without the deadline the half-open socket would stay.
    expect(l.lookupd.clients.size).toBe(1);
    clock.advance(DEADLINE_MS);
    await eventually(() => expect(l.lookupd.clients.size).toBe(0));
  });

  it('sets no deadline with 0, as NSQ', async () => {
    const { l, clock } = await lookupdWithDeadline(0);
    const [c, server] = await connectTo(l);
    expect(clock.pendingTimers).toBe(0);
    clock.advance(10 * DEADLINE_MS);
    expect(server.destroyed).toBe(false);
    c.write('PING\n');
    expect(await c.readText()).toBe('OK');
  });
});
