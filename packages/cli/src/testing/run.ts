/** Runs the real `bin/nsq.js` as a child process, as an operator would. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const NSQ_BIN = fileURLToPath(new URL('../../bin/nsq.js', import.meta.url));

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `nsq …`; stdin is a pipe the caller writes to and ends. */
export function startNsq(args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [NSQ_BIN, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
}

/** Resolves when `child` exits, with all its output; SIGKILLs it after `timeoutMs`. */
export function finished(child: ChildProcess, timeoutMs = 15_000): Promise<Run> {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString('utf8');
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export async function nsq(args: readonly string[], stdin?: string): Promise<Run> {
  const child = startNsq(args);
  const done = finished(child);
  child.stdin?.end(stdin ?? '');
  return done;
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The data cells of `nsq stat`'s table rows (the lines that are neither rule nor header). */
export function statRows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((l) => l.includes('|') && !l.includes('ingress'))
    .map((l) => l.replaceAll('|', ' ').trim().split(/\s+/));
}

/** util-linux's script(1), which runs a command on a pseudo-terminal. */
export const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

/** `nsq …args` on a pseudo-terminal (script(1)); `output` is everything the terminal showed. */
export async function nsqOnTerminal(
  args: readonly string[],
  input: string,
): Promise<{ code: number | null; output: string }> {
  const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, NSQ_BIN, ...args].map(quote).join(' ');
  const child = spawn('script', ['-q', '-e', '-c', command, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '', NO_COLOR: '1' },
  });
  const done = finished(child);
  child.stdin?.end(input);
  const run = await done;
  return { code: run.code, output: run.stdout + run.stderr };
}
