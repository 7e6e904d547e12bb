/**
 * The per-test resources of a process test: a fresh {@link ProcessGroup} for every test (its
 * processes' output printed when the test fails), and cleanups (connections, timers) that run
 * newest first after the test, before every process is SIGKILLed and reaped.
 */
import { afterEach, beforeEach } from 'vitest';
import { ProcessGroup } from './processes.js';

export interface PerTest {
  /** This test's processes. */
  readonly group: ProcessGroup;
  /** Runs `cleanup` after the test (errors ignored: what it closes may be gone already). */
  defer(cleanup: () => unknown): void;
}

export interface PerTestOptions {
  /** Runs first after each test, before the cleanups (e.g. healing a partition so closing is quick). */
  readonly beforeCleanups?: () => unknown;
}

/** Registers the hooks in the calling test file (call it at top level). */
export function perTestProcesses(options: PerTestOptions = {}): PerTest {
  let group = new ProcessGroup();
  const cleanups: Array<() => unknown> = [];
  beforeEach(({ onTestFailed }) => {
    group = new ProcessGroup();
    const mine = group;
    onTestFailed(() => {
      console.error(`---- daemon output (last lines of each process) ----\n${mine.logs()}`);
    });
  });
  afterEach(async () => {
    await options.beforeCleanups?.();
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch {
        // a connection to a daemon that is gone may fail to close cleanly
      }
    }
    await group.killAll();
  });
  return {
    get group() {
      return group;
    },
    defer(cleanup) {
      cleanups.push(cleanup);
    },
  };
}
