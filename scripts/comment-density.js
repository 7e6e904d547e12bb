#!/usr/bin/env node
/**
 * Comment lines as a share of non-blank source lines, per package and per file (tests and
 * test utilities left out), so the style rule "about 5-10 % comments" can be checked.
 * A line counts as a comment when it holds nothing but comment text (TypeScript's
 * parser decides, so `//` inside a string does not count). Usage:
 *   node scripts/comment-density.js [--files N]   (N: how many of the densest files to list; default 10)
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const flag = process.argv.indexOf('--files');
const listed = flag > 0 ? Number(process.argv[flag + 1]) : 10;

function measure(file) {
  const text = fs.readFileSync(file, 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lineOf = (pos) => source.getLineAndCharacterOfPosition(pos).line;
  const code = new Set();
  const comment = new Set();
  const mark = (set, from, to) => {
    for (let l = lineOf(from); l <= lineOf(to); l++) set.add(l);
  };
  const comments = (pos) => {
    const ranges = [
      ...(ts.getLeadingCommentRanges(text, pos) ?? []),
      ...(ts.getTrailingCommentRanges(text, pos) ?? []),
    ];
    for (const r of ranges) mark(comment, r.pos, r.end);
  };
  const visit = (node) => {
    if (ts.isJSDoc(node)) return;
    comments(node.pos);
    const children = node.getChildren(source);
    if (children.length === 0) {
      if (node.kind !== ts.SyntaxKind.EndOfFileToken) mark(code, node.getStart(source), node.end);
      comments(node.end);
    }
    for (const child of children) visit(child);
  };
  visit(source);
  const commentOnly = [...comment].filter((l) => !code.has(l)).length;
  return { comment: commentOnly, lines: new Set([...code, ...comment]).size };
}

const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const files = [];
const pct = (c, n) => `${((100 * c) / Math.max(n, 1)).toFixed(1).padStart(5)} %`;
for (const dir of rootPkg.workspaces) {
  const src = path.join(ROOT, dir, 'src');
  if (!fs.existsSync(src)) continue;
  let comment = 0;
  let lines = 0;
  for (const e of fs.readdirSync(src, { withFileTypes: true, recursive: true })) {
    if (!e.isFile() || !e.name.endsWith('.ts') || /\.(test|test-util)\.ts$|\.d\.ts$/.test(e.name)) continue;
    const file = path.join(e.parentPath, e.name);
    const m = measure(file);
    comment += m.comment;
    lines += m.lines;
    files.push({ file: path.relative(ROOT, file), ...m });
  }
  console.log(`${dir.padEnd(22)} ${pct(comment, lines)}  ${String(comment).padStart(5)} / ${lines} lines`);
}
console.log(`\ndensest files (at least 40 lines):`);
const dense = files.filter((f) => f.lines >= 40).sort((a, b) => b.comment / b.lines - a.comment / a.lines);
for (const f of dense.slice(0, listed)) console.log(`${pct(f.comment, f.lines)}  ${f.comment} / ${f.lines}  ${f.file}`);
