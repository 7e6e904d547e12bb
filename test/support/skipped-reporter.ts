/**
 * A vitest reporter that ends `npm test` with the suites this machine could not run: which ones,
 * why (the reason each suite puts in its title when it skips itself), and how to enable them.
 * Suites skip themselves with `describe.skipIf(reason !== null)(`… — skipped: ${reason}`)`; tests
 * left out by a `-t` filter are not listed.
 */
import path from 'node:path';
import type { Reporter, TestModule, TestSuite } from 'vitest/node';

/** How to give this machine what a file's skipped suites need. */
const HOW_TO_ENABLE: Readonly<Record<string, string>> = {
  'test/admin-browser.test.ts': 'install Chromium as /usr/bin/chromium (apt-get install -y chromium; .ci/run does)',
  'test/partition.test.ts': 'run as root with iptables (apt-get install -y iptables; .ci/run does)',
  'test/durability.test.ts': 'run as root, where mount -t tmpfs works',
  'packages/cli/src/admin.test.ts': "install util-linux's script(1) (apt-get install -y bsdutils)",
};

interface Skipped {
  file: string;
  title: string;
  tests: number;
}

function isEnvironmentSkip(suite: TestSuite): boolean {
  return suite.options.mode === 'skip' && /skip/i.test(suite.name);
}

/** The outermost self-skipped suites of a module, with their test counts. */
function skippedSuites(module: TestModule, root: string): Skipped[] {
  const out: Skipped[] = [];
  const visit = (suite: TestSuite): void => {
    if (isEnvironmentSkip(suite)) {
      const tests = [...suite.children.allTests()].length;
      out.push({ file: path.relative(root, module.moduleId), title: suite.name, tests });
      return;
    }
    for (const child of suite.children.suites()) visit(child);
  };
  for (const suite of module.children.suites()) visit(suite);
  return out;
}

export default class SkippedReporter implements Reporter {
  private root = process.cwd();

  onInit(vitest: { config: { root: string } }): void {
    this.root = vitest.config.root;
  }

  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    const skipped = modules.flatMap((m) => skippedSuites(m, this.root));
    if (skipped.length === 0) return;
    const total = skipped.reduce((n, s) => n + s.tests, 0);
    const lines = [`\n Skipped on this machine: ${total} test(s) in ${skipped.length} suite(s)`];
    for (const s of skipped) {
      lines.push(`   ${s.file}: "${s.title}" (${s.tests} test(s))`);
      lines.push(`     to run them: ${HOW_TO_ENABLE[s.file] ?? 'provide what the reason above names'}`);
    }
    process.stdout.write(`${lines.join('\n')}\n\n`);
  }
}
