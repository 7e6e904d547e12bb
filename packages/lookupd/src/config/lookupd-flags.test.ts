import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FlagError, FlagErrorCode } from '@nsq-ts/go-compat';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultLookupdOptions } from '../options.js';
import { lookupdUsage, parseLookupdArgs } from './lookupd-flags.js';

const tmp = mkdtempSync(join(tmpdir(), 'lookupd-flags-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function run(argv: string[]) {
  const args = parseLookupdArgs(argv);
  if (args.kind !== 'run') throw new Error(`expected run, got ${args.kind}`);
  return args;
}

function refused(argv: string[]): FlagError {
  try {
    parseLookupdArgs(argv);
  } catch (err) {
    if (err instanceof FlagError) return err;
    throw err;
  }
  throw new Error('expected a FlagError');
}

describe('parseLookupdArgs', () => {
  it('defaults to NSQ’s', () => {
    expect(run([]).options).toEqual(defaultLookupdOptions());
  });

  it('reads every flag in Go syntax', () => {
    const { options } = run([
      '-tcp-address',
      '127.0.0.1:1',
      '--http-address=127.0.0.1:2',
      '--broadcast-address=lk',
      '--inactive-producer-timeout=5m',
      '-tombstone-lifetime=1.5s',
      '--log-level=WARN',
      '--log-prefix=[x] ',
      '--verbose',
    ]);
    expect(options).toMatchObject({
      tcpAddress: '127.0.0.1:1',
      httpAddress: '127.0.0.1:2',
      broadcastAddress: 'lk',
      inactiveProducerTimeoutMs: 300_000,
      tombstoneLifetimeMs: 1500,
      logLevel: 'warn',
      logPrefix: '[x] ',
    });
  });

  it('--version and -h', () => {
    expect(parseLookupdArgs(['--version']).kind).toBe('version');
    const help = parseLookupdArgs(['-h']);
    expect(help).toEqual({ kind: 'help', text: lookupdUsage() });
    expect(lookupdUsage()).toContain('  -inactive-producer-timeout duration\n');
    expect(lookupdUsage()).toContain('(default 5m0s)');
    expect(lookupdUsage()).toContain('(default 45s)');
    expect(lookupdUsage()).toContain('(default "0.0.0.0:4160")');
  });

  it('refuses bad command lines with Go’s messages (exit 2)', () => {
    expect(refused(['--nope']).message).toBe('flag provided but not defined: -nope');
    const e = refused(['--tombstone-lifetime=soon']);
    expect(e.message).toBe('invalid value "soon" for flag -tombstone-lifetime: parse error');
    expect(e.exitCode).toBe(2);
    expect(refused(['--log-level=loud']).code).toBe(FlagErrorCode.InvalidValue);
    expect(refused(['extra']).code).toBe(FlagErrorCode.UnexpectedArgument);
  });

  it('refuses negative durations (exit 1)', () => {
    const e = refused(['--inactive-producer-timeout=-1s']);
    expect(e.message).toBe('--inactive-producer-timeout must not be negative');
    expect(e.exitCode).toBe(1);
  });

  it('reads --tcp-read-timeout, refusing deadlines a PINGing nsqd could miss', () => {
    // The default is four of nsqd's 15 s PING intervals.
    expect(run([]).options.tcpReadTimeoutMs).toBe(60_000);
    expect(run(['--tcp-read-timeout=2m']).options.tcpReadTimeoutMs).toBe(120_000);
    expect(run(['--tcp-read-timeout=30s']).options.tcpReadTimeoutMs).toBe(30_000);
    expect(run(['--tcp-read-timeout=0']).options.tcpReadTimeoutMs).toBe(0);
    expect(lookupdUsage()).toContain('  -tcp-read-timeout duration\n');
    const short = refused(['--tcp-read-timeout=15s']);
    expect(short.message).toBe('--tcp-read-timeout must be 0 or at least 30s');
    expect(short.exitCode).toBe(1);
    expect(refused(['--tcp-read-timeout=-1s']).message).toBe('--tcp-read-timeout must not be negative');
  });

  it('reads the security extensions and refuses incomplete ones', () => {
    const o = run([
      '--http-auth-token=a',
      '--http-auth-token',
      'b',
      '--http-auth-reads',
      '--tls-cert=/c.pem',
      '--tls-key=/k.pem',
    ]).options;
    expect(o).toMatchObject({ httpAuthTokens: ['a', 'b'], httpAuthReads: true, tlsCert: '/c.pem', tlsKey: '/k.pem' });
    expect(run(['--http-auth-token=']).options.httpAuthTokens).toEqual([]);
    expect(refused(['--http-auth-reads']).message).toBe('--http-auth-reads needs --http-auth-token');
    expect(refused(['--tls-cert=/c.pem']).message).toBe('--tls-cert and --tls-key must be given together');
    expect(refused(['--tls-key=/k.pem']).exitCode).toBe(1);
  });

  it('reads a TOML config whose values yield to the command line', () => {
    const path = join(tmp, 'a.toml');
    writeFileSync(
      path,
      'tcp_address = "127.0.0.1:9"\nhttp_address = "127.0.0.1:10"\ntombstone_lifetime = "10s"\ninactive_producer_timeout = 2000\nmystery = 1\n',
    );
    const { options, warnings } = run([`--config=${path}`, '--http-address=127.0.0.1:11']);
    expect(options).toMatchObject({
      tcpAddress: '127.0.0.1:9',
      httpAddress: '127.0.0.1:11',
      tombstoneLifetimeMs: 10_000,
      inactiveProducerTimeoutMs: 2000,
    });
    expect(warnings).toEqual(['config key mystery is not an nsqlookupd option; ignored']);
  });

  it('refuses an unreadable or mistyped config (exit 1)', () => {
    const missing = refused([`--config=${join(tmp, 'none.toml')}`]);
    expect(missing.code).toBe(FlagErrorCode.InvalidConfig);
    expect(missing.exitCode).toBe(1);
    const path = join(tmp, 'b.toml');
    writeFileSync(path, 'tcp_address = 5\n');
    expect(refused([`--config=${path}`]).message).toBe('invalid value 5 for config key tcp_address: expected a string');
  });
});

// bin/nsqlookupd.js as a child process; it loads dist/, so build first (`npx tsc -b`).
const PKG = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(PKG, 'bin', 'nsqlookupd.js');

function runBin(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

describe('bin/nsqlookupd.js', () => {
  beforeAll(() => {
    if (!existsSync(join(PKG, 'dist', 'config', 'lookupd-flags.js'))) {
      throw new Error('packages/lookupd/dist is missing: run `npx tsc -b` before these tests');
    }
  });

  it('--version prints one line and exits 0', async () => {
    const r = await runBin(['--version']);
    expect(r).toEqual({ code: 0, stdout: `nsqlookupd v1.3.0 (built w/node${process.versions.node})\n`, stderr: '' });
  });

  it('-h prints the usage and exits 0', async () => {
    const r = await runBin(['-h']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('Usage of nsqlookupd:\n')).toBe(true);
  });

  it('exits 2 on a bad flag, 1 on a bad option', async () => {
    const bad = await runBin(['--bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("flag provided but not defined: -bogus\nRun 'nsqlookupd --help' for usage.\n");
    const negative = await runBin(['--tombstone-lifetime=-1s']);
    expect(negative.code).toBe(1);
    expect(negative.stderr).toBe('[nsqlookupd] FATAL: --tombstone-lifetime must not be negative\n');
  });

  function start(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    return { child, output: () => stderr, exit };
  }

  async function waitFor(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  it.each(['SIGTERM', 'SIGINT'] as const)('serves, then closes and exits 0 on %s', async (signal) => {
    const { child, output, exit } = start(['--tcp-address=127.0.0.1:0', '--http-address=127.0.0.1:0']);
    await waitFor(() => output().includes('listening on TCP'), 'the listening line');
    const m = /listening on TCP (127\.0\.0\.1:\d+), HTTP (127\.0\.0\.1:\d+)$/m.exec(output());
    expect(m).not.toBeNull();
    const ping = await fetch(`http://${m?.[2]}/ping`);
    expect(await ping.text()).toBe('OK');
    child.kill(signal);
    expect(await exit).toBe(0);
    expect(output()).toContain(`[nsqlookupd] INFO: ${signal} received; shutting down\n`);
  });

  it('exits 1 when it cannot listen', async () => {
    const first = start(['--tcp-address=127.0.0.1:0', '--http-address=127.0.0.1:0']);
    try {
      await waitFor(() => first.output().includes('listening on TCP'), 'the first daemon');
      const tcp = /listening on TCP (127\.0\.0\.1:\d+)/.exec(first.output())?.[1] as string;
      const second = start([`--tcp-address=${tcp}`, '--http-address=127.0.0.1:0']);
      expect(await second.exit).toBe(1);
      expect(second.output()).toContain('[nsqlookupd] FATAL: failed to start nsqlookupd - listen EADDRINUSE');
    } finally {
      first.child.kill('SIGTERM');
      await first.exit;
    }
  });
});
