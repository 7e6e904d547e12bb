import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// Runs bin/nsqd.js as a child process. It loads the compiled dist/, so build first (`npx tsc -b`).
const PKG = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(PKG, 'bin', 'nsqd.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runBin(bin: string, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

beforeAll(() => {
  if (!existsSync(join(PKG, 'dist', 'config', 'nsqd-flags.js'))) {
    throw new Error('packages/nsqd/dist is missing: run `npx tsc -b` before these tests');
  }
});

describe('bin/nsqd.js', () => {
  it('--version prints one line and exits 0', async () => {
    const r = await runBin(BIN, ['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`nsqd v1.3.0 (built w/node${process.versions.node})\n`);
    expect(r.stdout.startsWith('nsqd v1.3.0')).toBe(true);
    expect(r.stderr).toBe('');
  });

  it('-h prints the usage and exits 0', async () => {
    const r = await runBin(BIN, ['-h']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('Usage of nsqd:\n')).toBe(true);
    expect(r.stdout).toContain('  -tcp-address string\n');
  });

  it('exits 2 on an undefined flag', async () => {
    const r = await runBin(BIN, ['--bogus']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe("flag provided but not defined: -bogus\nRun 'nsqd --help' for usage.\n");
  });

  it('exits 2 on a bad value', async () => {
    const r = await runBin(BIN, ['--mem-queue-size=abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('invalid value "abc" for flag -mem-queue-size: parse error\n');
  });

  it('exits 1 on an option nsqd refuses at start-up', async () => {
    const r = await runBin(BIN, ['--node-id', '5000']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('[nsqd] FATAL: --node-id must be [0,1024)\n');
  });
});

/**
 * The run path, against a stand-in broker: a copy of the bin beside a dist/ whose config/ is the
 * real build and whose index.js is a fake createNsqd that records its calls on stderr. The copy
 * lives inside the package so that its `@nsq-ts/server-kit` import resolves.
 */
describe('bin/nsqd.js lifecycle (fake broker)', () => {
  let root: string;
  let fakeBin: string;

  beforeAll(() => {
    root = mkdtempSync(join(PKG, '.bin-test-'));
    mkdirSync(join(root, 'bin'));
    mkdirSync(join(root, 'dist'));
    fakeBin = join(root, 'bin', 'nsqd.js');
    copyFileSync(BIN, fakeBin);
    symlinkSync(join(PKG, 'dist', 'config'), join(root, 'dist', 'config'));
    writeFileSync(
      join(root, 'dist', 'index.js'),
      `
export function createNsqd(options) {
  let timer = null;
  return {
    tcpAddress: '127.0.0.1:41500',
    httpAddress: options.httpAddress === '' ? '' : '127.0.0.1:41510',
    async start() {
      if (process.env.FAKE_START_FAIL) throw new Error('address in use');
      timer = setInterval(() => {}, 60_000);
      process.stderr.write('FAKE start mem=' + options.memQueueSize + '\\n');
    },
    close() {
      process.stderr.write('FAKE close\\n');
      if (process.env.FAKE_CLOSE_HANG) return new Promise(() => {});
      clearInterval(timer);
      return Promise.resolve();
    },
  };
}
`,
    );
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
    const child = spawn(process.execPath, [fakeBin, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    return { child, output: () => stderr };
  }

  async function waitFor(check: () => boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  function exited(child: ChildProcess): Promise<number | null> {
    return new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.on('exit', (code) => resolve(code));
    });
  }

  it.each(['SIGTERM', 'SIGINT'] as const)('logs its addresses, then closes and exits 0 on %s', async (signal) => {
    const { child, output } = start(['--mem-queue-size=7']);
    const exit = exited(child);
    await waitFor(() => output().includes('listening on'), 'the listening line');
    expect(output()).toContain('FAKE start mem=7\n');
    expect(output()).toMatch(
      /^\[nsqd\] INFO: nsqd v1\.3\.0 \(built w\/node[\d.]+\) listening on TCP 127\.0\.0\.1:41500, HTTP 127\.0\.0\.1:41510$/m,
    );
    child.kill(signal);
    expect(await exit).toBe(0);
    expect(output()).toContain(`[nsqd] INFO: ${signal} received; shutting down\nFAKE close\n`);
  });

  it('says when HTTP is disabled and warns about unknown config keys', async () => {
    const config = join(root, 'nsqd.toml');
    writeFileSync(config, 'log_prefix = "[x] "\nmem_queue = 5\n');
    const { child, output } = start(['--http-address=', `--config=${config}`]);
    const exit = exited(child);
    await waitFor(() => output().includes('listening on'), 'the listening line');
    expect(output()).toContain('[x] WARNING: config key mem_queue is not an nsqd option; ignored\n');
    expect(output()).toMatch(/listening on TCP 127\.0\.0\.1:41500, HTTP disabled$/m);
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
  });

  it('exits at once on a second signal while closing', async () => {
    const { child, output } = start([], { FAKE_CLOSE_HANG: '1' });
    const exit = exited(child);
    await waitFor(() => output().includes('listening on'), 'the listening line');
    child.kill('SIGINT');
    await waitFor(() => output().includes('FAKE close'), 'close to begin');
    child.kill('SIGINT');
    expect(await exit).toBe(1);
    expect(output()).toContain('SIGINT received again; exiting without a clean shutdown');
  });

  it('exits 1 when the broker fails to start', async () => {
    const { child, output } = start([], { FAKE_START_FAIL: '1' });
    expect(await exited(child)).toBe(1);
    expect(output()).toContain('[nsqd] FATAL: failed to start nsqd - address in use\n');
  });
});
