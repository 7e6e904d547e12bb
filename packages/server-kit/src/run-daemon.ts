import { FlagError } from '@nsq-ts/go-compat';

export interface Daemon {
  /** '' for a daemon that has no TCP listener. */
  readonly tcpAddress: string;
  readonly httpAddress: string;
  start(): Promise<void>;
  close(): Promise<void>;
}

export type DaemonArgs<O> =
  | { readonly kind: 'run'; readonly options: O; readonly warnings: readonly string[] }
  | { readonly kind: 'version' }
  | { readonly kind: 'help'; readonly text: string };

export interface DaemonMain<O extends { logPrefix: string }> {
  /** The program name, as in `Run 'nsqd --help' for usage.` */
  name: string;
  parseArgs(argv: readonly string[]): DaemonArgs<O>;
  versionLine(): string;
  /** Loaded only for a run, so --version and flag errors work without the daemon's modules. */
  load(): Promise<(options: O) => Daemon>;
}

/**
 * Exits 2 on a bad command line and 1 on a refused option, as Go's daemons; SIGINT/SIGTERM close
 * and exit 0, a second signal exits 1. Resolves with an exit code, or null while the daemon runs.
 */
export async function runDaemon<O extends { logPrefix: string }>(
  main: DaemonMain<O>,
  argv: readonly string[] = process.argv.slice(2),
): Promise<number | null> {
  let args: DaemonArgs<O>;
  try {
    args = main.parseArgs(argv);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    if (err.exitCode === 2) process.stderr.write(`${err.message}\nRun '${main.name} --help' for usage.\n`);
    else process.stderr.write(`[${main.name}] FATAL: ${err.message}\n`);
    return err.exitCode;
  }
  if (args.kind === 'version') {
    process.stdout.write(`${main.versionLine()}\n`);
    return 0;
  }
  if (args.kind === 'help') {
    process.stdout.write(args.text);
    return 0;
  }

  const { options, warnings } = args;
  const log = (level: string, message: string): void => {
    process.stderr.write(`${options.logPrefix}${level}: ${message}\n`);
  };
  for (const warning of warnings) log('WARNING', warning);
  const daemon = (await main.load())(options);

  let closing = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) {
      log('INFO', `${signal} received again; exiting without a clean shutdown`);
      process.exit(1);
    }
    closing = true;
    log('INFO', `${signal} received; shutting down`);
    daemon.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log('FATAL', `shutdown failed - ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await daemon.start();
  } catch (err) {
    if (closing) return null; // a signal arrived during start-up; onSignal finishes the exit
    log('FATAL', `failed to start ${main.name} - ${err instanceof Error ? err.message : String(err)}`);
    await daemon.close().catch(() => undefined);
    return 1;
  }
  // One line with both addresses, for people and for scripts that wait for start-up.
  const http = daemon.httpAddress === '' ? 'disabled' : daemon.httpAddress;
  // A daemon without a TCP side (nsqadmin) says only where its HTTP is.
  const tcp = daemon.tcpAddress === '' ? '' : `TCP ${daemon.tcpAddress}, `;
  log('INFO', `${main.versionLine()} listening on ${tcp}HTTP ${http}`);
  return null;
}
