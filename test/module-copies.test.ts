/**
 * vitest.config.ts resolves `@nsq-ts/*` to each package's source, so a test that imports a package
 * by name, a module of it by path, and a helper that imports the package itself, holds one copy of
 * each class: instanceof and module state agree across the three.
 */
import { Nsqd, Topic } from '@nsq-ts/nsqd';
import { ProtocolError } from '@nsq-ts/protocol';
import { startNsqd } from '@nsq-ts/test-utils';
import { describe, expect, it } from 'vitest';
import { Nsqd as NsqdFromSource } from '../packages/nsqd/src/nsqd.js';
import { Topic as TopicFromSource } from '../packages/nsqd/src/topic.js';
import { ProtocolError as ProtocolErrorFromSource } from '../packages/protocol/src/errors.js';

describe('one copy of each module', () => {
  it('a package name and its source path give the same class', () => {
    expect(Nsqd).toBe(NsqdFromSource);
    expect(Topic).toBe(TopicFromSource);
    expect(ProtocolError).toBe(ProtocolErrorFromSource);
  });

  it('what a helper package builds is an instance of the source class', async () => {
    const d = await startNsqd();
    try {
      expect(d.nsqd).toBeInstanceOf(NsqdFromSource);
      expect(d.nsqd.getTopic('t')).toBeInstanceOf(TopicFromSource);
    } finally {
      await d.close();
    }
  });
});
