/**
 * The packages as a user gets them: `scripts/pack.js` (what `npm run pack` runs) makes a tarball
 * per public package, and a fresh scratch project outside this repository installs them with npm
 * — nothing from the workspace, no `@nsq-ts/*` from any registry (its scope points at a closed
 * port), only third-party packages from the registry (or npm's cache). Then, in that project: the
 * manifests are complete, a TypeScript program type-checks against the installed `.d.ts` files,
 * `npx nsqd` starts the broker, and the compiled program does a Producer → Consumer round trip.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { eventually } from '@nsq-ts/test-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort } from '../packages/cli/src/testing/run.js';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const rootManifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
  overrides: Record<string, string>;
  allowScripts: Record<string, boolean>;
};
const PUBLIC = ['protocol', 'go-compat', 'http-client', 'server-kit', 'client', 'nsqd', 'lookupd', 'admin', 'cli'];

/** The environment of a user's shell: none of the npm_* variables `npm test` passes down. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && k !== 'NODE_OPTIONS') env[k] = v;
  return env;
}

let scratch: string;
let daemon: ChildProcess | null = null;

/** The TypeScript a user would write: every package imported, the codec rule enforced by the types. */
const APP = `import { ClientError, Consumer, jsonCodec, Producer, ProtocolError } from '@nsq-ts/client';
import type { NsqdOptions } from '@nsq-ts/nsqd';
import type { createLookupd } from '@nsq-ts/lookupd';
import type { createAdmin } from '@nsq-ts/admin';
import { isValidTopicName } from '@nsq-ts/protocol';
import { parseGoDuration } from '@nsq-ts/go-compat';
import { NsqHttpError, lookupProducers } from '@nsq-ts/http-client';

interface Order {
  id: number;
  item: string;
}

const [nsqdAddress] = process.argv.slice(2);
const options: Partial<NsqdOptions> = { tcpAddress: '127.0.0.1:0' };
const lookupd: typeof createLookupd | null = null;
const admin: typeof createAdmin | null = null;
void [options, lookupd, admin];
if (!isValidTopicName('orders')) throw new Error('topic');
if (parseGoDuration('1m30s') !== 90_000) throw new Error('duration');
const typed: typeof lookupProducers | null = null;
void [typed, NsqHttpError];

// @ts-expect-error a body type other than Buffer | string needs a codec
new Producer<Order>({ nsqdAddress });
// @ts-expect-error a consumer of anything but Buffers needs a codec
new Consumer<string>({ topic: 'orders', channel: 'c', nsqdAddresses: [nsqdAddress] });

const producer = new Producer<Order>({ nsqdAddress, codec: jsonCodec<Order>() });
const consumer = new Consumer<Order>({
  topic: 'orders',
  channel: 'billing',
  nsqdAddresses: [nsqdAddress],
  codec: jsonCodec<Order>(),
});
const received = new Promise<Order>((resolve) => {
  consumer.on('message', (msg) => resolve(msg.body));
});
await consumer.connect();
await producer.publish('orders', { id: 7, item: 'book' });
const order: Order = await received;
try {
  await producer.publish('orders!', { id: 8, item: 'pen' });
} catch (err) {
  if (!(err instanceof ClientError) || err instanceof ProtocolError) throw err;
  console.log('refused:', err.code);
}
await consumer.close();
await producer.close();
console.log('round trip:', JSON.stringify(order));
`;

beforeAll(async () => {
  scratch = mkdtempSync(path.join(os.tmpdir(), 'nsq-ts-install-'));
  const packs = path.join(scratch, 'packs');
  await run(process.execPath, [path.join(ROOT, 'scripts/pack.js'), packs], { cwd: ROOT });
  const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
  const dependencies: Record<string, string> = {};
  const overrides: Record<string, string> = { ...rootManifest.overrides };
  for (const dir of PUBLIC) {
    const file = tarballs.find((t) => t.startsWith(`nsq-ts-${dir}-`));
    expect(file, `a tarball of ${dir}`).toBeDefined();
    dependencies[`@nsq-ts/${dir}`] = `file:${path.join(packs, file as string)}`;
    // The packages' own "0.1.0" ranges on each other resolve to these tarballs, not a registry.
    overrides[`@nsq-ts/${dir}`] = `$@nsq-ts/${dir}`;
  }
  dependencies.typescript = rootManifest.devDependencies.typescript;
  dependencies['@types/node'] = rootManifest.devDependencies['@types/node'];
  const app = { name: 'scratch-app', private: true, type: 'module', dependencies, overrides };
  writeFileSync(
    path.join(scratch, 'package.json'),
    JSON.stringify({ ...app, allowScripts: rootManifest.allowScripts }, null, 2),
  );
  // Any lookup of an @nsq-ts package in a registry fails at once instead of finding something.
  writeFileSync(
    path.join(scratch, '.npmrc'),
    `@nsq-ts:registry=http://127.0.0.1:${await closedPort()}/\nfetch-retries=0\n`,
  );
  writeFileSync(path.join(scratch, 'app.ts'), APP);
  writeFileSync(
    path.join(scratch, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        types: ['node'],
        outDir: 'out',
      },
      files: ['app.ts'],
    }),
  );
}, 120_000);

afterAll(async () => {
  if (daemon !== null && daemon.exitCode === null && daemon.signalCode === null && daemon.pid !== undefined) {
    process.kill(-daemon.pid, 'SIGKILL');
  }
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
});

describe('the packed tarballs, installed into a project outside the repository', () => {
  let installOutput = '';

  it('install with npm, without engine or install-script warnings', async () => {
    const { stdout, stderr } = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: scratch,
      env: userEnv(),
      timeout: 240_000,
    });
    installOutput = stdout + stderr;
    expect(installOutput).not.toMatch(/EBADENGINE|install-scripts|ERR!/);
  }, 250_000);

  it('carry complete manifests, a README each, the same version, and nothing but what they need', async () => {
    expect(installOutput).not.toBe('');
    const versions = new Set<string>();
    for (const dir of PUBLIC) {
      const home = path.join(scratch, 'node_modules/@nsq-ts', dir);
      const pkg = JSON.parse(readFileSync(path.join(home, 'package.json'), 'utf8'));
      versions.add(pkg.version);
      expect(pkg.private, dir).toBeUndefined();
      expect(pkg.license, dir).toBe('MIT');
      expect(pkg.engines, dir).toEqual(rootManifest.engines);
      expect(pkg.repository?.directory, dir).toBe(`packages/${dir}`);
      expect(pkg.exports['.'].types, dir).toBe(pkg.types);
      expect(readFileSync(path.join(home, 'README.md'), 'utf8'), dir).toContain(`# ${pkg.name}`);
      for (const [dep, spec] of Object.entries<string>(pkg.dependencies ?? {})) {
        if (!dep.startsWith('@nsq-ts/')) continue;
        // Only public packages, at exactly the version they all share.
        expect(PUBLIC, `${dir} depends on ${dep}`).toContain(dep.slice(8));
        expect(spec, `${dir} → ${dep}`).toBe(pkg.version);
      }
      const files = readdirSync(home, { recursive: true })
        .map(String)
        .filter((f) => !f.startsWith('node_modules'));
      expect(
        files.filter((f) => /\.test\.|testing|\.map$|tsbuildinfo|(^|\/)src\//.test(f)),
        dir,
      ).toEqual([]);
    }
    expect([...versions]).toHaveLength(1);
  });

  it('type-check a TypeScript program against the installed types', async () => {
    const tsc = path.join(scratch, 'node_modules/typescript/bin/tsc');
    const result = await run(process.execPath, [tsc, '-p', '.'], { cwd: scratch, env: userEnv() }).catch(
      (err: { stdout: string }) => ({ stdout: err.stdout, failed: true }),
    );
    expect(result.stdout).toBe('');
    expect('failed' in result).toBe(false);
  }, 60_000);

  it('run `npx nsqd` and make a Producer/Consumer round trip against it', async () => {
    const dataPath = path.join(scratch, 'data');
    const child = spawn(
      'npx',
      ['nsqd', '--tcp-address=127.0.0.1:0', '--http-address=127.0.0.1:0', `--data-path=${dataPath}`],
      {
        cwd: scratch,
        env: userEnv(),
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true, // its own process group: npx runs nsqd in a shell below it
      },
    );
    daemon = child;
    let log = '';
    for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (log += d.toString()));
    const tcp = await eventually(
      () => {
        const m = /TCP: listening on (127\.0\.0\.1:\d+)/.exec(log);
        expect(m, log).not.toBeNull();
        return (m as RegExpExecArray)[1];
      },
      { timeoutMs: 30_000 },
    );
    const { stdout } = await run(process.execPath, ['out/app.js', tcp], {
      cwd: scratch,
      env: userEnv(),
      timeout: 30_000,
    });
    expect(stdout).toContain('refused: E_INVALID_ARGUMENT');
    expect(stdout).toContain('round trip: {"id":7,"item":"book"}');

    const cli = await run('npx', ['nsq', 'pub', 'orders', 'from the cli', `--nsqd-tcp-address=${tcp}`], {
      cwd: scratch,
      env: userEnv(),
    });
    expect(cli.stderr).toContain('published 1 message to orders');

    // SIGTERM reaches npx and nsqd alike (one process group); nsqd shuts down cleanly.
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    process.kill(-(child.pid as number), 'SIGTERM');
    await exited;
    daemon = null;
    expect(log).toContain('SIGTERM received');
    expect(log).not.toMatch(/ERROR|FATAL/);
  }, 90_000);
});
