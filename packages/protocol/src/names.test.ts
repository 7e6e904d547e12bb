import { describe, expect, it } from 'vitest';
import { isEphemeralName, isValidChannelName, isValidName, isValidTopicName, MAX_NAME_LENGTH } from './names.js';

describe('isValidName', () => {
  it('MAX_NAME_LENGTH is 64', () => {
    expect(MAX_NAME_LENGTH).toBe(64);
  });

  const valid = [
    'a',
    'Z',
    '0',
    '.',
    '_',
    '-',
    'orders',
    'Orders.v2_2024-01',
    '...',
    '---',
    'a#ephemeral',
    'orders.v2#ephemeral',
    '-#ephemeral',
    'a'.repeat(64),
    `${'a'.repeat(54)}#ephemeral`, // 54 + 10 = 64: the suffix counts
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._', // 64 chars
  ];

  for (const name of valid) {
    it(`accepts ${JSON.stringify(name)}`, () => {
      expect(isValidName(name)).toBe(true);
    });
  }

  const invalid: Array<[string, string]> = [
    ['', 'empty'],
    ['a'.repeat(65), '65 chars'],
    [`${'a'.repeat(55)}#ephemeral`, '55 + #ephemeral = 65 chars'],
    ['#ephemeral', '#ephemeral alone'],
    ['#ephemeral#ephemeral', 'suffix twice'],
    ['a#ephemeral#ephemeral', 'suffix twice after a name'],
    ['a#Ephemeral', 'suffix is case-sensitive'],
    ['a#EPHEMERAL', 'suffix is case-sensitive'],
    ['a#ephemera', 'truncated suffix'],
    ['a#ephemeralx', 'text after the suffix'],
    ['#', 'lone #'],
    ['a#', 'trailing #'],
    ['a#b', '# inside'],
    ['a b', 'space'],
    [' a', 'leading space'],
    ['a ', 'trailing space'],
    ['a\n', 'trailing newline (a $ that matched before \\n would accept it)'],
    ['a\nb', 'newline inside'],
    ['\na', 'leading newline'],
    ['a\tb', 'tab'],
    ['a\0', 'NUL'],
    ['a/b', 'slash'],
    ['a:b', 'colon'],
    ['a*', 'star'],
    ['a,b', 'comma'],
    ['a+b', 'plus'],
    ['caf\u00e9', 'latin1 letter'],
    ['\u00e9', 'latin1 letter alone'],
    ['\u0430', 'cyrillic a'],
    ['t\u00f6pic#ephemeral', 'unicode with suffix'],
    ['\ud83d\ude00', 'emoji'],
    ['\u212a', 'Kelvin sign (folds to k under case-insensitive matching)'],
    ['\u0131', 'dotless i'],
    ['\uff41', 'fullwidth a'],
    ['\u0661', 'arabic-indic digit one'],
  ];

  for (const [name, why] of invalid) {
    it(`refuses ${JSON.stringify(name.length > 20 ? `${name.slice(0, 12)}...(${name.length})` : name)} (${why})`, () => {
      expect(isValidName(name)).toBe(false);
    });
  }

  it('the 64-char limit is exact with and without the suffix', () => {
    for (let n = 1; n <= 70; n++) {
      expect(isValidName('x'.repeat(n)), `${n} chars`).toBe(n <= 64);
      const eph = `${'x'.repeat(n)}#ephemeral`;
      expect(isValidName(eph), `${n} + 10 chars`).toBe(eph.length <= 64);
    }
  });

  it('topics and channels follow the same rule', () => {
    for (const name of ['t', 'a#ephemeral', '#ephemeral', '', 'a b', 'a'.repeat(64), 'a'.repeat(65)]) {
      expect(isValidTopicName(name), name).toBe(isValidName(name));
      expect(isValidChannelName(name), name).toBe(isValidName(name));
    }
  });
});

describe('isEphemeralName', () => {
  it('is true for a #ephemeral suffix', () => {
    expect(isEphemeralName('a#ephemeral')).toBe(true);
    expect(isEphemeralName('orders.v2#ephemeral')).toBe(true);
    expect(isEphemeralName('#ephemeral')).toBe(true); // a suffix check, like strings.HasSuffix
  });

  it('is false otherwise', () => {
    for (const name of [
      'a',
      'ephemeral',
      'a-ephemeral',
      'a#ephemeralx',
      'a#Ephemeral',
      'a#ephemera',
      '#ephemeral ',
      '',
    ]) {
      expect(isEphemeralName(name), name).toBe(false);
    }
  });
});
