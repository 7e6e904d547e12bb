import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLookupd, type Lookupd, type LookupdOptions } from '@nsq-ts/lookupd';
import { Nsqd, type NsqdOptions } from '@nsq-ts/nsqd';
import type { Clock } from '@nsq-ts/server-kit';

export interface TestNsqd {
  nsqd: Nsqd;
  tcpAddress: string;
  httpAddress: string;
  dataPath: string;
  close(): Promise<void>;
}

/** Starts an in-process nsqd on 127.0.0.1 with free ports and a fresh temp data dir. */
export async function startNsqd(options: Partial<NsqdOptions> = {}, clock?: Clock): Promise<TestNsqd> {
  const dataPath = await mkdtemp(join(tmpdir(), 'nsqd-test-'));
  const nsqd = new Nsqd(
    {
      tcpAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      dataPath,
      logLevel: 'warn',
      // NSQ_TS_TRANSPORT_WORKERS=N runs every suite with TLS and compression in N worker threads.
      transportWorkers: Number(process.env.NSQ_TS_TRANSPORT_WORKERS ?? 0),
      ...options,
    },
    clock,
  );
  await nsqd.start();
  return {
    nsqd,
    tcpAddress: nsqd.tcpAddress,
    httpAddress: nsqd.httpAddress,
    dataPath,
    async close() {
      await nsqd.close();
      await rm(dataPath, { recursive: true, force: true });
    },
  };
}

export interface TestLookupd {
  lookupd: Lookupd;
  tcpAddress: string;
  httpAddress: string;
  close(): Promise<void>;
}

/** Starts an in-process nsqlookupd on 127.0.0.1 with free ports. */
export async function startLookupd(options: Partial<LookupdOptions> = {}, clock?: Clock): Promise<TestLookupd> {
  const lookupd = createLookupd(
    {
      tcpAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      broadcastAddress: '127.0.0.1',
      logLevel: 'fatal',
      ...options,
    },
    clock,
  );
  await lookupd.start();
  return {
    lookupd,
    tcpAddress: lookupd.tcpAddress,
    httpAddress: lookupd.httpAddress,
    close: () => lookupd.close(),
  };
}
