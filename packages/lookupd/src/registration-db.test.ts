import { describe, expect, it } from 'vitest';
import {
  Category,
  filterByActive,
  type PeerInfo,
  Producer,
  type Registration,
  RegistrationDB,
  WILDCARD,
} from './registration-db.js';

function peer(id: string, lastUpdateMs = 1_000): PeerInfo {
  return {
    id,
    remoteAddress: id,
    hostname: `host-${id}`,
    broadcastAddress: `host-${id}`,
    tcpPort: 4150,
    httpPort: 4151,
    version: '1.3.0',
    lastUpdateMs,
  };
}

const topic = (key: string): Registration => ({ category: Category.Topic, key, subKey: '' });
const channel = (key: string, subKey: string): Registration => ({ category: Category.Channel, key, subKey });
const ids = (producers: Producer[]) => producers.map((p) => p.peerInfo.id).sort();

describe('RegistrationDB', () => {
  it('adds a producer once per registration, by its id', () => {
    const db = new RegistrationDB();
    const a = new Producer(peer('a:1'));
    expect(db.addProducer(topic('t'), a)).toBe(true);
    expect(db.addProducer(topic('t'), new Producer(peer('a:1')))).toBe(false);
    expect(db.addProducer(topic('t'), new Producer(peer('b:1')))).toBe(true);
    expect(ids(db.findProducers(Category.Topic, 't', ''))).toEqual(['a:1', 'b:1']);
    expect(db.findProducers(Category.Topic, 't', '')[0]).toBe(a);
  });

  it('keeps a registration its last producer left (a topic stays listed), until it is removed', () => {
    const db = new RegistrationDB();
    db.addProducer(topic('t'), new Producer(peer('a:1')));
    expect(db.removeProducer(topic('t'), 'a:1')).toEqual({ removed: true, left: 0 });
    expect(db.removeProducer(topic('t'), 'a:1')).toEqual({ removed: false, left: 0 });
    expect(db.removeProducer(topic('nope'), 'a:1')).toEqual({ removed: false, left: 0 });
    expect(db.findRegistrations(Category.Topic, 't', '')).toEqual([topic('t')]);
    db.removeRegistration(topic('t'));
    expect(db.findRegistrations(Category.Topic, WILDCARD, '')).toEqual([]);
  });

  it('addRegistration makes an empty one, and a registration passed in is copied, not kept', () => {
    const db = new RegistrationDB();
    const r: { category: Category; key: string; subKey: string } = { ...channel('t', 'c') };
    db.addRegistration(r);
    r.subKey = 'changed';
    expect(db.findRegistrations(Category.Channel, 't', WILDCARD)).toEqual([channel('t', 'c')]);
    expect(db.findProducers(Category.Channel, 't', 'c')).toEqual([]);
  });

  it('* matches any key or sub-key; an exact lookup matches only itself', () => {
    const db = new RegistrationDB();
    for (const [t, c] of [
      ['t1', 'a'],
      ['t1', 'b'],
      ['t2', 'a'],
    ]) {
      db.addRegistration(channel(t as string, c as string));
      db.addRegistration(topic(t as string));
    }
    expect(db.findRegistrations(Category.Channel, 't1', WILDCARD).map((r) => r.subKey)).toEqual(['a', 'b']);
    expect(db.findRegistrations(Category.Channel, WILDCARD, 'a').map((r) => r.key)).toEqual(['t1', 't2']);
    expect(db.findRegistrations(Category.Channel, WILDCARD, WILDCARD)).toHaveLength(3);
    expect(db.findRegistrations(Category.Topic, WILDCARD, '').map((r) => r.key)).toEqual(['t1', 't2']);
    expect(db.findRegistrations(Category.Channel, 't2', 'b')).toEqual([]);
    expect(db.count(Category.Channel)).toBe(3);
    expect(db.count(Category.Topic)).toBe(2);
  });

  it('names that look like key separators never collide (HTTP lookups are not validated)', () => {
    const db = new RegistrationDB();
    db.addProducer(channel('a:b', 'c'), new Producer(peer('x:1')));
    db.addProducer(channel('a', 'b:c'), new Producer(peer('y:1')));
    expect(ids(db.findProducers(Category.Channel, 'a:b', 'c'))).toEqual(['x:1']);
    expect(ids(db.findProducers(Category.Channel, 'a', 'b:c'))).toEqual(['y:1']);
  });

  it('a wildcard producer lookup lists each peer once', () => {
    const db = new RegistrationDB();
    const a = new Producer(peer('a:1'));
    db.addProducer(channel('t', 'c1'), a);
    db.addProducer(channel('t', 'c2'), new Producer(a.peerInfo));
    db.addProducer(channel('t', 'c2'), new Producer(peer('b:1')));
    expect(ids(db.findProducers(Category.Channel, 't', WILDCARD))).toEqual(['a:1', 'b:1']);
  });

  it('lookupRegistrations lists what one peer is registered under', () => {
    const db = new RegistrationDB();
    const info = peer('a:1');
    db.addProducer({ category: Category.Client, key: '', subKey: '' }, new Producer(info));
    db.addProducer(topic('t'), new Producer(info));
    db.addProducer(channel('t', 'c'), new Producer(info));
    db.addProducer(topic('other'), new Producer(peer('b:1')));
    expect(db.lookupRegistrations('a:1').map((r) => r.category)).toEqual(['client', 'topic', 'channel']);
    expect([...db.all()].map((e) => e.producers.length)).toEqual([1, 1, 1, 1]);
  });
});

describe('tombstones and liveness', () => {
  it('a tombstone lasts its lifetime, per registration', () => {
    const info = peer('a:1');
    const inT1 = new Producer(info);
    const inT2 = new Producer(info);
    inT1.tombstone(10_000);
    expect(inT1.isTombstoned(45_000, 10_000)).toBe(true);
    expect(inT1.isTombstoned(45_000, 54_999)).toBe(true);
    expect(inT1.isTombstoned(45_000, 55_000)).toBe(false);
    expect(inT2.isTombstoned(45_000, 10_000)).toBe(false);
    expect(inT1.tombstonedAtMs).toBe(10_000);
  });

  it('filterByActive drops producers silent past the inactive timeout and tombstoned ones', () => {
    const fresh = new Producer(peer('fresh:1', 100_000));
    const edge = new Producer(peer('edge:1', 100_000 - 300_000));
    const stale = new Producer(peer('stale:1', 100_000 - 300_001));
    const dead = new Producer(peer('dead:1', 100_000));
    dead.tombstone(90_000);
    const active = filterByActive([fresh, edge, stale, dead], 300_000, 45_000, 100_000);
    expect(ids(active)).toEqual(['edge:1', 'fresh:1']);
    // With no tombstone lifetime a tombstone no longer hides the producer.
    expect(ids(filterByActive([dead], 300_000, 0, 100_000))).toEqual(['dead:1']);
  });
});
