#!/usr/bin/env node
/**
 * Fails when a package's own modules import each other in a cycle, counting `import type` and
 * `export … from` too: a type-only cycle still ties two modules into one unit to read and change.
 * Runs in `npm run lint`. Test files are left out (they import what they test, nothing imports them).
 * Usage: node scripts/check-import-cycles.js [package-dir ...] (default: every workspace's src/).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function sourceFiles(dir) {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).flatMap((e) => {
    const file = path.join(e.parentPath, e.name);
    return e.isFile() && /\.ts$/.test(e.name) && !/\.(test|test-util)\.ts$|\.d\.ts$/.test(e.name) ? [file] : [];
  });
}

/** The package-local modules `file` imports: relative specifiers resolved to their .ts source. */
function localImports(file) {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, false);
  const found = [];
  for (const s of source.statements) {
    const spec = (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) && s.moduleSpecifier;
    if (!spec || !ts.isStringLiteral(spec) || !spec.text.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), spec.text.replace(/\.js$/, ''));
    const target = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
    if (target !== undefined) found.push(target);
  }
  return found;
}

/** Tarjan's strongly connected components with more than one module (or a module importing itself). */
function cycles(graph) {
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const out = [];
  let next = 0;
  const visit = (v) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v), index.get(w)));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const scc = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const packages = process.argv.length > 2 ? process.argv.slice(2) : rootPkg.workspaces;
let failed = false;
for (const dir of packages) {
  const src = path.join(ROOT, dir, 'src');
  if (!fs.existsSync(src)) continue;
  const graph = new Map(sourceFiles(src).map((f) => [f, localImports(f)]));
  for (const scc of cycles(graph)) {
    failed = true;
    const names = scc.map((f) => path.relative(ROOT, f));
    console.error(`import cycle in ${dir}: ${names.join(' ↔ ')}`);
  }
}
if (failed) process.exit(1);
