#!/usr/bin/env node
// nsq: the command-line tools (pub, tail, stat, topics, channels, empty/pause/unpause/delete).
import { main } from '../dist/index.js';

const code = await main(process.argv.slice(2));
// Wait for stdout to drain, then exit even if a socket (e.g. an HTTP keep-alive) lingers.
process.stdout.write('', () => process.exit(code));
