#!/usr/bin/env node
// nsqd: reads NSQ's flags (and --config TOML), runs the broker, and shuts it down cleanly on
// SIGINT/SIGTERM (nsq-spec §5.7). Exit codes follow Go's: 2 for a bad command line, 1 for a fatal
// config or start-up error, 0 after --version, --help or a clean shutdown.
import { FlagError, nsqdVersionLine, parseNsqdArgs } from '../dist/config/nsqd-flags.js';

async function main() {
  let args;
  try {
    args = parseNsqdArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    if (err.exitCode === 2) {
      process.stderr.write(`${err.message}\nRun 'nsqd --help' for usage.\n`);
    } else {
      process.stderr.write(`[nsqd] FATAL: ${err.message}\n`);
    }
    return err.exitCode;
  }
  if (args.kind === 'version') {
    process.stdout.write(`${nsqdVersionLine()}\n`);
    return 0;
  }
  if (args.kind === 'help') {
    process.stdout.write(args.text);
    return 0;
  }

  const { options, warnings } = args;
  const log = (level, message) => process.stderr.write(`${options.logPrefix}${level}: ${message}\n`);
  for (const warning of warnings) log('WARNING', warning);

  // Loaded only now, so --version and flag errors work without the broker.
  const { createNsqd } = await import('../dist/index.js');
  const nsqd = createNsqd(options);

  let closing = false;
  const onSignal = (signal) => {
    if (closing) {
      log('INFO', `${signal} received again; exiting without a clean shutdown`);
      process.exit(1);
    }
    closing = true;
    log('INFO', `${signal} received; shutting down`);
    nsqd.close().then(
      () => process.exit(0),
      (err) => {
        log('FATAL', `shutdown failed - ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    await nsqd.start();
  } catch (err) {
    if (closing) return null; // a signal arrived during start-up; onSignal finishes the exit
    log('FATAL', `failed to start nsqd - ${err instanceof Error ? err.message : String(err)}`);
    await nsqd.close().catch(() => {});
    return 1;
  }
  // One line with both addresses, for people and for scripts that wait for start-up.
  const http = nsqd.httpAddress === '' ? 'disabled' : nsqd.httpAddress;
  log('INFO', `${nsqdVersionLine()} listening on TCP ${nsqd.tcpAddress}, HTTP ${http}`);
  return null;
}

const code = await main();
if (code !== null) process.exit(code);
