import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCommand, encodeMpubBody } from '@nsq-ts/protocol';
import { eventually, RawClient, type RawFrame } from '@nsq-ts/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultyFileSystem } from '../log/file-system.test-util.js';
import { Nsqd } from '../nsqd.js';
import { MAX_WAITING_PUBLISHES } from './store-answers.js';

// Durable mode (--mem-queue-size=0) answers a publish once stored; a held disk keeps the first flush waiting.
let dataPath = '';
let nsqd: Nsqd | null = null;
let disk = new FaultyFileSystem();
let release = (): void => undefined;
const clients: RawClient[] = [];

beforeEach(async () => {
  dataPath = await mkdtemp(join(tmpdir(), 'nsqd-pipeline-'));
  disk = new FaultyFileSystem();
  nsqd = new Nsqd(
    { tcpAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', logLevel: 'warn', dataPath, memQueueSize: 0 },
    undefined,
    disk,
  );
  await nsqd.start();
});

afterEach(async () => {
  release();
  for (const c of clients.splice(0)) c.close();
  await nsqd?.close();
  nsqd = null;
  await rm(dataPath, { recursive: true, force: true });
});

function holdDisk(): void {
  disk.held = new Promise<void>((resolve) => {
    release = () => {
      disk.held = null;
      resolve();
    };
  });
}

async function connect(): Promise<RawClient> {
  const c = await RawClient.connect((nsqd as Nsqd).tcpAddress);
  clients.push(c);
  return c;
}

const text = (f: RawFrame): string => f.data.toString('latin1');
const pub = (topic: string, body: string): Buffer => encodeCommand('PUB', [topic], body);
const mpub = (topic: string, bodies: string[]): Buffer =>
  encodeCommand('MPUB', [topic], encodeMpubBody(bodies.map((b) => Buffer.from(b))));
/** Messages the topic holds, stored or not. */
const held = (topic: string): number => {
  const tail = nsqd?.topics.get(topic)?.tail;
  return tail === undefined ? 0 : tail.end - tail.start;
};

async function silent(c: RawClient, ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  expect(c.pending()).toEqual([]);
}

describe('publishes pipelined on one connection', () => {
  it('are all decoded while the first waits for the disk, then answered in order', async () => {
    const c = await connect();
    c.write(pub('warm', 'x'));
    expect(text(await c.readFrame())).toBe('OK');
    holdDisk();
    c.write(
      Buffer.concat([
        mpub('t', ['a', 'b']),
        pub('t', 'c'),
        encodeCommand('DPUB', ['t', '1000'], 'd'),
        Buffer.from('NOP\n'),
        mpub('t', ['e']),
      ]),
    );
    await eventually(() => expect(held('t')).toBe(5));
    await silent(c, 50);
    release();
    expect((await c.readFrames(4)).map(text)).toEqual(['OK', 'OK', 'OK', 'OK']);
    await silent(c, 20);
  });

  it('a command that is not a publish waits until the answers before it are written', async () => {
    const c = await connect();
    holdDisk();
    c.write(Buffer.concat([pub('t', 'a'), pub('t', 'b'), Buffer.from('FIN 0123456789abcdef\n'), pub('t', 'never')]));
    await eventually(() => expect(held('t')).toBe(2));
    await silent(c, 50);
    release();
    expect((await c.readFrames(3)).map(text)).toEqual(['OK', 'OK', 'E_INVALID cannot FIN in current state']);
    await c.waitClosed();
    expect(held('t')).toBe(2);
  });

  it('an error found while earlier publishes wait follows their answers', async () => {
    const c = await connect();
    holdDisk();
    c.write(Buffer.concat([pub('t', 'a'), Buffer.from('PUB bad!topic\n'), pub('t', 'never')]));
    await eventually(() => expect(held('t')).toBe(1));
    await silent(c, 50);
    release();
    expect((await c.readFrames(2)).map(text)).toEqual(['OK', 'E_BAD_TOPIC PUB topic name "bad!topic" is not valid']);
    await c.waitClosed();
    expect(held('t')).toBe(1);
  });

  it(`decodes at most ${MAX_WAITING_PUBLISHES} publishes ahead of their answers`, async () => {
    const c = await connect();
    holdDisk();
    const count = MAX_WAITING_PUBLISHES + 4;
    c.write(Buffer.concat(Array.from({ length: count }, (_, i) => pub('t', `m${i}`))));
    await eventually(() => expect(held('t')).toBe(MAX_WAITING_PUBLISHES));
    await silent(c, 50);
    expect(held('t')).toBe(MAX_WAITING_PUBLISHES);
    release();
    expect((await c.readFrames(count)).map(text)).toEqual(Array(count).fill('OK'));
  });

  it('a publisher that half-closes after its publishes gets every answer before the close', async () => {
    const c = await connect();
    holdDisk();
    c.write(Buffer.concat([pub('t', 'a'), pub('t', 'b'), pub('t', 'c')]));
    c.socket.end();
    await eventually(() => expect(held('t')).toBe(3));
    await silent(c, 50);
    release();
    expect((await c.readFrames(3)).map(text)).toEqual(['OK', 'OK', 'OK']);
    await c.waitClosed();
  });

  it('a failed write answers its publish E_PUB_FAILED and closes; a publish decoded after it gets no answer', async () => {
    const c = await connect();
    c.write(pub('t', 'ok'));
    expect(text(await c.readFrame())).toBe('OK');
    holdDisk();
    c.write(pub('t', 'a'));
    await eventually(() => expect(held('t')).toBe(2));
    // Decoded while the first waits: it goes into the next flush.
    c.write(pub('t', 'b'));
    await eventually(() => expect(held('t')).toBe(3));
    disk.failWrites = 1;
    release();
    expect(text(await c.readFrame())).toMatch(/^E_PUB_FAILED PUB failed/);
    await c.waitClosed();
    expect(c.pending()).toEqual([]);
  });
});
