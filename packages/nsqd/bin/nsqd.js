#!/usr/bin/env node
// nsqd: reads NSQ's flags (and --config TOML), runs the broker, and shuts it down cleanly on
// SIGINT/SIGTERM (nsq-spec §5.7); the lifecycle and exit codes are server-kit's runDaemon.
import { runDaemon } from '@nsq-ts/server-kit';
import { nsqdVersionLine, parseNsqdArgs } from '../dist/config/nsqd-flags.js';

const code = await runDaemon({
  name: 'nsqd',
  parseArgs: parseNsqdArgs,
  versionLine: nsqdVersionLine,
  load: async () => (await import('../dist/index.js')).createNsqd,
});
if (code !== null) process.exit(code);
