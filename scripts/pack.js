#!/usr/bin/env node
/**
 * `npm run pack`: one tarball per public workspace, all in packs/ at the repository root (or the
 * folder given as the only argument), as npm would publish them: `npm install ./packs/*.tgz` in
 * another project installs nsq-ts without this repository. Private workspaces (test-utils) are
 * left out; packs/ is emptied first so it never holds tarballs of an older version. Prints the
 * tarballs' paths, one per line, on stdout. Build first (`npm run pack` does).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEST = path.resolve(process.argv[2] ?? path.join(ROOT, 'packs'));

const root = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const workspaces = root.workspaces.filter((dir) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, dir, 'package.json'), 'utf8'));
  return pkg.private !== true;
});

if (process.argv[2] === undefined) fs.rmSync(DEST, { recursive: true, force: true });
fs.mkdirSync(DEST, { recursive: true });
// npm (an npm-cli.js, or npm.cmd on Windows) as the user's npm script runner found it.
const npm = process.env.npm_execpath;
const [command, prefix] = npm?.endsWith('.js') ? [process.execPath, [npm]] : ['npm', []];
const out = execFileSync(
  command,
  [...prefix, 'pack', '--json', '--pack-destination', DEST, ...workspaces.flatMap((w) => ['--workspace', w])],
  { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
);
for (const { filename } of JSON.parse(out)) process.stdout.write(`${path.join(DEST, filename)}\n`);
