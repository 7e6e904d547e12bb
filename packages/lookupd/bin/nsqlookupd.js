#!/usr/bin/env node
// nsqlookupd: reads NSQ's flags (and --config TOML), runs the lookup daemon, and shuts it down on
// SIGINT/SIGTERM; the lifecycle and exit codes are server-kit's runDaemon.
import { runDaemon } from '@nsq-ts/server-kit';
import { lookupdVersionLine, parseLookupdArgs } from '../dist/config/lookupd-flags.js';

const code = await runDaemon({
  name: 'nsqlookupd',
  parseArgs: parseLookupdArgs,
  versionLine: lookupdVersionLine,
  load: async () => (await import('../dist/index.js')).createLookupd,
});
if (code !== null) process.exit(code);
