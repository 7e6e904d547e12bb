import { describe, expect, it } from 'vitest';
import { MAX_WAITING_BYTES, MAX_WAITING_PUBLISHES, StoreAnswers } from './store-answers.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve = (): void => undefined;
  let reject = (_: Error): void => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function answers() {
  const out: string[] = [];
  let written = 0;
  const a = new StoreAnswers({ answersWritten: () => written++ });
  const say =
    (what: string, goOn = true) =>
    (): boolean => {
      out.push(what);
      return goOn;
    };
  return { a, out, say, written: () => written };
}

describe('StoreAnswers', () => {
  it('writes an answer known now at once when nothing waits', () => {
    const { a, out, say, written } = answers();
    a.ready(say('ok'));
    expect(out).toEqual(['ok']);
    expect(a.pending).toBe(false);
    expect(written()).toBe(0);
  });

  it('keeps command order whatever order the stores settle in', async () => {
    const { a, out, say, written } = answers();
    const first = deferred();
    const second = deferred();
    a.wait(first.promise, 10, say('ok 1'), () => true);
    a.wait(second.promise, 10, say('ok 2'), () => true);
    a.ready(say('error 3'));
    second.resolve();
    await tick();
    expect(out).toEqual([]);
    expect(a.pending).toBe(true);
    first.resolve();
    await tick();
    expect(out).toEqual(['ok 1', 'ok 2', 'error 3']);
    expect(a.pending).toBe(false);
    expect(written()).toBe(1);
  });

  it('a failed store gets its own answer; an answer that closes drops every later one', async () => {
    const { a, out, say } = answers();
    const first = deferred();
    const second = deferred();
    a.wait(first.promise, 1, say('ok 1'), (err) => {
      out.push(`fatal ${err.message}`);
      return false;
    });
    a.wait(second.promise, 1, say('ok 2'), () => true);
    second.resolve();
    first.reject(new Error('disk'));
    await tick();
    expect(out).toEqual(['fatal disk']);
    expect(a.pending).toBe(false);
    a.ready(say('after close'));
    expect(out).toEqual(['fatal disk']);
  });

  it(`is full at ${MAX_WAITING_PUBLISHES} waiting publishes or ${MAX_WAITING_BYTES} bytes, and has room again as answers go`, async () => {
    const { a, say } = answers();
    const stores = Array.from({ length: MAX_WAITING_PUBLISHES }, () => deferred());
    for (const [i, d] of stores.entries()) {
      expect(a.full).toBe(false);
      a.wait(d.promise, 1, say(`ok ${i}`), () => true);
    }
    expect(a.full).toBe(true);
    stores[0]?.resolve();
    await tick();
    expect(a.full).toBe(false);
    const big = deferred();
    a.wait(big.promise, MAX_WAITING_BYTES, say('big'), () => true);
    expect(a.full).toBe(true);
  });

  it('a pipeline that never empties keeps its queue short', async () => {
    const { a, out, say } = answers();
    const queued = (): number => (a as unknown as { slots: unknown[] }).slots.length;
    let previous = deferred();
    a.wait(previous.promise, 1, say('ok'), () => true);
    let longest = 0;
    for (let i = 0; i < 1_000; i++) {
      const next = deferred();
      a.wait(next.promise, 1, say('ok'), () => true);
      previous.resolve();
      await tick();
      longest = Math.max(longest, queued());
      previous = next;
    }
    previous.resolve();
    await tick();
    expect(out).toHaveLength(1_001);
    expect(longest).toBeLessThanOrEqual(66);
    expect(queued()).toBe(0);
  });
});
