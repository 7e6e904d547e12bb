import { describe, expect, it } from 'vitest';
import {
  FlagError,
  FlagErrorCode,
  type FlagSpec,
  formatGoDuration,
  formatGoUsage,
  parseGoBool,
  parseGoDuration,
  parseGoFlags,
  parseGoFloat,
  parseGoInt,
} from './go-flags.js';

const SPECS: readonly FlagSpec[] = [
  { name: 'addr', type: 'string', default: '0.0.0.0:1', usage: 'listen `address`' },
  { name: 'size', type: 'int', default: 10, usage: 'a size' },
  { name: 'on', type: 'bool', default: false, usage: 'turn on' },
  { name: 'v', type: 'bool', default: false, usage: 'verbose' },
  { name: 'wait', type: 'duration', default: 60_000, usage: 'how long' },
  { name: 'ratio', type: 'float', default: 0.5, usage: 'a ratio' },
  { name: 'peer', type: 'string-array', default: ['x:1'], usage: 'repeatable' },
  { name: 'pct', type: 'float-array', default: [], usage: 'percentiles' },
  {
    name: 'mode',
    type: 'custom',
    default: 'off',
    isBool: true,
    defaultText: '',
    usage: 'on, off or auto',
    parse: (raw) => {
      if (raw === 'auto') return 'auto';
      return parseGoBool(raw) ? 'on' : 'off';
    },
  },
  {
    name: 'color',
    type: 'custom',
    default: 'red',
    usage: 'a color',
    parse: (raw) => {
      if (raw !== 'red' && raw !== 'blue') throw new Error(`unknown color ${raw}`);
      return raw;
    },
  },
];

function parse(...argv: string[]) {
  return parseGoFlags(SPECS, argv);
}

function thrown(fn: () => unknown): FlagError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(FlagError);
    return err as FlagError;
  }
  throw new Error('expected a FlagError');
}

describe('parseGoFlags syntax', () => {
  it.each([[['-addr', 'h:2']], [['--addr', 'h:2']], [['-addr=h:2']], [['--addr=h:2']]])('accepts %j', (argv) => {
    const r = parseGoFlags(SPECS, argv);
    expect(r.values.get('addr')).toBe('h:2');
    expect(r.set).toEqual(new Set(['addr']));
    expect(r.rest).toEqual([]);
    expect(r.help).toBe(false);
  });

  it('returns defaults for flags not given', () => {
    const r = parse();
    expect(r.values.get('addr')).toBe('0.0.0.0:1');
    expect(r.values.get('size')).toBe(10);
    expect(r.values.get('on')).toBe(false);
    expect(r.values.get('wait')).toBe(60_000);
    expect(r.values.get('peer')).toEqual(['x:1']);
    expect(r.set.size).toBe(0);
  });

  it('keeps the last value of a flag given twice', () => {
    expect(parse('-size', '1', '--size=2').values.get('size')).toBe(2);
  });

  it('splits on the first = only and allows an empty value', () => {
    expect(parse('--addr=a=b').values.get('addr')).toBe('a=b');
    expect(parse('--addr=').values.get('addr')).toBe('');
  });

  it('lets a non-bool flag take a next argument that starts with a dash', () => {
    expect(parse('-addr', '-size').values.get('addr')).toBe('-size');
    expect(parse('-size', '-5').values.get('size')).toBe(-5);
  });

  it('stops at the first non-flag argument and at --', () => {
    expect(parse('-size=1', 'pos', '-size=2').rest).toEqual(['pos', '-size=2']);
    expect(parse('-size=1', 'pos').values.get('size')).toBe(1);
    const r = parse('-on', '--', '-size=2');
    expect(r.rest).toEqual(['-size=2']);
    expect(r.values.get('size')).toBe(10);
    expect(parse('-').rest).toEqual(['-']);
    expect(parse('--').rest).toEqual([]);
  });

  it('refuses positionals when asked, hinting at a bool flag given a separate value', () => {
    const e = thrown(() => parseGoFlags(SPECS, ['-size=1', 'pos'], { positionals: 'error' }));
    expect(e.code).toBe(FlagErrorCode.UnexpectedArgument);
    expect(e.message).toBe('unexpected argument "pos"');
    expect(e.exitCode).toBe(2);
    const hinted = thrown(() => parseGoFlags(SPECS, ['--on', 'false'], { positionals: 'error' }));
    expect(hinted.message).toBe('unexpected argument "false" (-on takes no separate value: write -on=false)');
    expect(thrown(() => parseGoFlags(SPECS, ['--', 'x'], { positionals: 'error' })).message).toBe(
      'unexpected argument "x"',
    );
    expect(parseGoFlags(SPECS, ['--on', '--'], { positionals: 'error' }).values.get('on')).toBe(true);
  });

  it.each([['-h'], ['--h'], ['-help'], ['--help'], ['--help=1']])('%s asks for help and stops parsing', (arg) => {
    const r = parse('-size=3', arg, '--bogus');
    expect(r.help).toBe(true);
  });

  it('reports undefined flags like Go', () => {
    const e = thrown(() => parse('--foo'));
    expect(e.message).toBe('flag provided but not defined: -foo');
    expect(e.code).toBe(FlagErrorCode.UndefinedFlag);
    expect(e.flag).toBe('foo');
    expect(thrown(() => parse('-foo=1')).message).toBe('flag provided but not defined: -foo');
  });

  it.each(['---addr', '-=x', '--=x'])('reports bad syntax for %s', (arg) => {
    const e = thrown(() => parse(arg));
    expect(e.code).toBe(FlagErrorCode.BadSyntax);
    expect(e.message).toBe(`bad flag syntax: ${arg}`);
  });

  it('reports a missing value', () => {
    const e = thrown(() => parse('-on', '--size'));
    expect(e.code).toBe(FlagErrorCode.MissingValue);
    expect(e.message).toBe('flag needs an argument: -size');
  });
});

describe('parseGoFlags types', () => {
  it('bool flags never take the next argument', () => {
    const r = parse('-on', 'false');
    expect(r.values.get('on')).toBe(true);
    expect(r.rest).toEqual(['false']);
  });

  it.each(['1', 't', 'T', 'true', 'TRUE', 'True'])('bool accepts =%s as true', (v) => {
    expect(parse(`--on=${v}`).values.get('on')).toBe(true);
  });

  it.each(['0', 'f', 'F', 'false', 'FALSE', 'False'])('bool accepts =%s as false', (v) => {
    const r = parse('-v', `--v=${v}`);
    expect(r.values.get('v')).toBe(false);
    expect(r.set.has('v')).toBe(true);
  });

  it.each(['yes', 'tRUE', '', '2'])('bool refuses =%j', (v) => {
    const e = thrown(() => parse(`--on=${v}`));
    expect(e.message).toBe(`invalid boolean value ${JSON.stringify(v)} for -on: parse error`);
    expect(e.code).toBe(FlagErrorCode.InvalidValue);
  });

  it('parses ints and refuses non-ints like Go', () => {
    expect(parse('-size', '0x10').values.get('size')).toBe(16);
    expect(thrown(() => parse('-size=abc')).message).toBe('invalid value "abc" for flag -size: parse error');
    expect(thrown(() => parse('-size=1.5')).message).toBe('invalid value "1.5" for flag -size: parse error');
    expect(thrown(() => parse('-size=9223372036854775808')).message).toBe(
      'invalid value "9223372036854775808" for flag -size: value out of range',
    );
  });

  it('parses durations into milliseconds', () => {
    expect(parse('-wait', '1h30m').values.get('wait')).toBe(5_400_000);
    expect(parse('-wait=250us').values.get('wait')).toBe(0.25);
    const e = thrown(() => parse('-wait=60'));
    expect(e.message).toBe('invalid value "60" for flag -wait: parse error');
    expect((e.cause as Error).cause).toBeInstanceOf(Error);
  });

  it('parses floats', () => {
    expect(parse('-ratio', '1e-2').values.get('ratio')).toBe(0.01);
    expect(thrown(() => parse('-ratio=x')).message).toBe('invalid value "x" for flag -ratio: parse error');
  });

  it('collects string arrays, the first command-line value replacing the default', () => {
    expect(parse('-peer', 'a:1', '--peer=b:2', '-peer', 'a:1').values.get('peer')).toEqual(['a:1', 'b:2', 'a:1']);
    expect(parse('-peer=a,b').values.get('peer')).toEqual(['a,b']);
  });

  it('collects float arrays, repeated and comma separated', () => {
    expect(parse('-pct', '0.5,0.9', '--pct=1').values.get('pct')).toEqual([0.5, 0.9, 1]);
    expect(thrown(() => parse('-pct=0.5,x')).message).toBe('invalid value "0.5,x" for flag -pct: parse error');
    expect(thrown(() => parse('-pct=')).message).toBe('invalid value "" for flag -pct: parse error');
  });

  it('runs custom parsers, bool-style and valued', () => {
    expect(parse('-mode').values.get('mode')).toBe('on');
    expect(parse('-mode=auto').values.get('mode')).toBe('auto');
    expect(parse('-mode=0').values.get('mode')).toBe('off');
    expect(parse('-mode', 'auto').rest).toEqual(['auto']);
    expect(thrown(() => parse('-mode=sometimes')).message).toBe(
      'invalid boolean value "sometimes" for -mode: parse error',
    );
    expect(parse('-color', 'blue').values.get('color')).toBe('blue');
    expect(thrown(() => parse('-color=green')).message).toBe(
      'invalid value "green" for flag -color: unknown color green',
    );
  });
});

describe('parseGoDuration (time.ParseDuration)', () => {
  it.each([
    ['0', 0],
    ['-0', 0],
    ['+0', 0],
    ['0s', 0],
    ['60s', 60_000],
    ['250ms', 250],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
    ['2h45m30.5s', 9_930_500],
    ['300us', 0.3],
    ['300\u00b5s', 0.3],
    ['300\u03bcs', 0.3],
    ['1000000ns', 1],
    ['.5s', 500],
    ['5.s', 5000],
    ['-1.5s', -1500],
    ['+2m', 120_000],
    ['1m1m', 120_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each([
    ['', 'time: invalid duration ""'],
    ['-', 'time: invalid duration "-"'],
    ['s', 'time: invalid duration "s"'],
    ['.s', 'time: invalid duration ".s"'],
    ['1', 'time: missing unit in duration "1"'],
    ['60', 'time: missing unit in duration "60"'],
    ['1h30', 'time: missing unit in duration "1h30"'],
    ['1d', 'time: unknown unit "d" in duration "1d"'],
    ['1 s', 'time: unknown unit " s" in duration "1 s"'],
    ['3000000h', 'time: invalid duration "3000000h"'],
  ])('refuses %j', (text, message) => {
    expect(() => parseGoDuration(text)).toThrow(message);
  });

  it.each([
    [0, '0s'],
    [0.000001, '1ns'],
    [0.0015, '1.5\u00b5s'],
    [25, '25ms'],
    [250, '250ms'],
    [1500, '1.5s'],
    [2000, '2s'],
    [60_000, '1m0s'],
    [90_000, '1m30s'],
    [900_000, '15m0s'],
    [3_600_000, '1h0m0s'],
    [5_430_500, '1h30m30.5s'],
    [-1500, '-1.5s'],
  ])('formats %d ms as %s', (ms, text) => {
    expect(formatGoDuration(ms)).toBe(text);
  });
});

describe('Go number and bool parsers', () => {
  it.each([
    ['0', 0],
    ['42', 42],
    ['+42', 42],
    ['-42', -42],
    ['0x1F', 31],
    ['0X1f', 31],
    ['0o17', 15],
    ['017', 15],
    ['0b101', 5],
    ['1_000', 1000],
    ['0x_1f', 31],
    ['-9007199254740991', -9007199254740991],
  ])('parseGoInt(%j) is %d', (text, n) => {
    expect(parseGoInt(text)).toBe(n);
  });

  it.each(['', '-', 'abc', '1.0', '08', '0x', '0b2', '_1', '1_', '1__0', '1e3', ' 1', '1 '])(
    'parseGoInt(%j) fails',
    (t) => {
      expect(() => parseGoInt(t)).toThrow('parse error');
    },
  );

  it('parseGoInt reports range errors', () => {
    expect(() => parseGoInt('9223372036854775808')).toThrow('value out of range');
    expect(() => parseGoInt('9007199254740993')).toThrow('value out of range');
  });

  it.each([
    ['1', 1],
    ['0.99', 0.99],
    ['.5', 0.5],
    ['5.', 5],
    ['-1e3', -1000],
    ['1E-2', 0.01],
    ['+Inf', Infinity],
    ['-infinity', -Infinity],
  ])('parseGoFloat(%j) is %d', (text, n) => {
    expect(parseGoFloat(text)).toBe(n);
  });

  it('parseGoFloat handles NaN and errors', () => {
    expect(parseGoFloat('NaN')).toBeNaN();
    expect(() => parseGoFloat('1e400')).toThrow('value out of range');
    for (const bad of ['', '.', 'e3', '1.2.3', '0.5x', '1_0']) expect(() => parseGoFloat(bad)).toThrow('parse error');
  });

  it('parseGoBool refuses everything outside strconv.ParseBool', () => {
    expect(() => parseGoBool('yes')).toThrow('parse error');
    expect(() => parseGoBool('tRue')).toThrow('parse error');
  });
});

describe('formatGoUsage', () => {
  it('prints Go PrintDefaults layout, sorted, with non-zero defaults', () => {
    const text = formatGoUsage('prog', SPECS);
    expect(text).toBe(
      [
        'Usage of prog:',
        '  -addr address',
        '    \tlisten address (default "0.0.0.0:1")',
        '  -color value',
        '    \ta color (default red)',
        '  -mode',
        '    \ton, off or auto',
        '  -on',
        '    \tturn on',
        '  -pct value',
        '    \tpercentiles',
        '  -peer value',
        '    \trepeatable (default x:1)',
        '  -ratio float',
        '    \ta ratio (default 0.5)',
        '  -size int',
        '    \ta size (default 10)',
        '  -v\tverbose',
        '  -wait duration',
        '    \thow long (default 1m0s)',
        '',
      ].join('\n'),
    );
  });
});
