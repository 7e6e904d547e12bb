#!/usr/bin/env node
// nsqlookupd: reads NSQ's flags (and --config TOML), runs the lookup daemon, and shuts it down on
// SIGINT/SIGTERM. Exit codes follow Go's: 2 for a bad command line, 1 for a fatal config or
// start-up error, 0 after --version, --help or a clean shutdown.
import { FlagError, lookupdVersionLine, parseLookupdArgs } from '../dist/config/lookupd-flags.js';

async function main() {
  let args;
  try {
    args = parseLookupdArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    if (err.exitCode === 2) {
      process.stderr.write(`${err.message}\nRun 'nsqlookupd --help' for usage.\n`);
    } else {
      process.stderr.write(`[nsqlookupd] FATAL: ${err.message}\n`);
    }
    return err.exitCode;
  }
  if (args.kind === 'version') {
    process.stdout.write(`${lookupdVersionLine()}\n`);
    return 0;
  }
  if (args.kind === 'help') {
    process.stdout.write(args.text);
    return 0;
  }

  const { options, warnings } = args;
  const log = (level, message) => process.stderr.write(`${options.logPrefix}${level}: ${message}\n`);
  for (const warning of warnings) log('WARNING', warning);

  // Loaded only now, so --version and flag errors work without the daemon.
  const { createLookupd } = await import('../dist/index.js');
  const lookupd = createLookupd(options);

  let closing = false;
  const onSignal = (signal) => {
    if (closing) {
      log('INFO', `${signal} received again; exiting without a clean shutdown`);
      process.exit(1);
    }
    closing = true;
    log('INFO', `${signal} received; shutting down`);
    lookupd.close().then(
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
    await lookupd.start();
  } catch (err) {
    if (closing) return null; // a signal arrived during start-up; onSignal finishes the exit
    log('FATAL', `failed to start nsqlookupd - ${err instanceof Error ? err.message : String(err)}`);
    await lookupd.close().catch(() => {});
    return 1;
  }
  // One line with both addresses, for people and for scripts that wait for start-up.
  log('INFO', `${lookupdVersionLine()} listening on TCP ${lookupd.tcpAddress}, HTTP ${lookupd.httpAddress}`);
  return null;
}

const code = await main();
if (code !== null) process.exit(code);
