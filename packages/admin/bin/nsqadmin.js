#!/usr/bin/env node
// nsqadmin: reads NSQ's flags, serves the admin UI and API, and shuts down on SIGINT/SIGTERM; the
// lifecycle and exit codes are server-kit's runDaemon.
import { runDaemon } from '@nsq-ts/server-kit';
import { adminVersionLine, parseAdminArgs } from '../dist/flags.js';

const code = await runDaemon({
  name: 'nsqadmin',
  parseArgs: parseAdminArgs,
  versionLine: adminVersionLine,
  load: async () => (await import('../dist/index.js')).createAdmin,
});
if (code !== null) process.exit(code);
