import { describe, expect, it } from 'vitest';
import { decodeIdentifyBody, defaultIdentifyRequest, IdentifyDecodeError, type IdentifyRequest } from './identify.js';

function decode(json: string | Buffer): IdentifyRequest {
  return decodeIdentifyBody(typeof json === 'string' ? Buffer.from(json, 'utf8') : json);
}

const DEFAULTS: IdentifyRequest = {
  client_id: '',
  hostname: '',
  user_agent: '',
  feature_negotiation: false,
  heartbeat_interval: 0,
  output_buffer_size: 0,
  output_buffer_timeout: 0,
  tls_v1: false,
  snappy: false,
  deflate: false,
  deflate_level: 0,
  sample_rate: 0,
  msg_timeout: 0,
};

/** nsqd's identifyDataV2 fields: a decoded request has exactly these keys and nothing else. */
const KEYS = Object.keys(DEFAULTS).sort();

function expectDecodeError(json: string | Buffer) {
  expect(() => decode(json), typeof json === 'string' ? json : json.toString('hex')).toThrow(IdentifyDecodeError);
}

describe('defaultIdentifyRequest', () => {
  it('is the Go zero value of every field', () => {
    expect(defaultIdentifyRequest()).toEqual(DEFAULTS);
  });

  it('returns a fresh object each time', () => {
    const a = defaultIdentifyRequest();
    a.client_id = 'changed';
    a.heartbeat_interval = 5;
    expect(defaultIdentifyRequest()).toEqual(DEFAULTS);
  });
});

describe('decodeIdentifyBody: accepted bodies', () => {
  it('an empty object gives the defaults', () => {
    expect(decode('{}')).toEqual(DEFAULTS);
  });

  it('a JSON null body gives the defaults (Go Unmarshal leaves the struct untouched)', () => {
    expect(decode('null')).toEqual(DEFAULTS);
    expect(decode(' null\n')).toEqual(DEFAULTS);
  });

  it('decodes every field of a go-nsq style body', () => {
    const body = {
      client_id: 'worker-1',
      hostname: 'worker-1.example.com',
      feature_negotiation: true,
      heartbeat_interval: 30000,
      output_buffer_size: 16384,
      output_buffer_timeout: 250,
      tls_v1: true,
      snappy: false,
      deflate: true,
      deflate_level: 6,
      sample_rate: 42,
      user_agent: 'go-nsq/1.1.0',
      msg_timeout: 60000,
    };
    expect(decode(JSON.stringify(body))).toEqual(body);
  });

  it('negative sentinels (-1 disables heartbeats / buffering) are kept as is', () => {
    const req = decode('{"heartbeat_interval":-1,"output_buffer_size":-1,"output_buffer_timeout":-1}');
    expect(req.heartbeat_interval).toBe(-1);
    expect(req.output_buffer_size).toBe(-1);
    expect(req.output_buffer_timeout).toBe(-1);
  });

  it('range checks are not the decoder’s job: out-of-range but well-typed values decode', () => {
    const req = decode('{"heartbeat_interval":5,"sample_rate":100,"msg_timeout":99999999,"deflate_level":42}');
    expect(req).toMatchObject({ heartbeat_interval: 5, sample_rate: 100, msg_timeout: 99999999, deflate_level: 42 });
  });

  it('unknown keys are ignored, whatever their type (short_id, long_id, topology_*)', () => {
    const req = decode(
      JSON.stringify({
        short_id: 'w1',
        long_id: 'w1.example.com',
        topology_region: 'eu',
        topology_zone: null,
        foo: { bar: [1, 2, { baz: true }] },
        client_id: 'c',
        heartbeat_interval: 1000,
      }),
    );
    expect(req).toEqual({ ...DEFAULTS, client_id: 'c', heartbeat_interval: 1000 });
    expect(Object.keys(req).sort()).toEqual(KEYS);
  });

  it('unknown keys that are Object.prototype member names are ignored like any other key', () => {
    // nsqd ignores them (Go has no prototype); a lookup table inheriting from Object.prototype
    // would take `constructor` / `__proto__` for known fields.
    for (const json of [
      '{"constructor":"x"}',
      '{"constructor":{}}',
      '{"constructor":1}',
      '{"CONSTRUCTOR":"x"}',
      '{"__proto__":{"client_id":"evil"}}',
      '{"__proto__":"x"}',
      '{"__proto__":1}',
      '{"toString":"x","valueOf":[],"hasOwnProperty":1,"isPrototypeOf":null,"__defineGetter__":true}',
    ]) {
      let req: IdentifyRequest | undefined;
      expect(() => {
        req = decode(json);
      }, json).not.toThrow();
      expect(req, json).toEqual(DEFAULTS);
      expect(Object.keys(req as IdentifyRequest).sort(), json).toEqual(KEYS);
      expect(Object.getPrototypeOf(req), json).toBe(Object.prototype);
    }
  });

  it('objects nested under unknown keys are skipped whole, whatever they contain (Go never looks inside)', () => {
    for (const json of [
      '{"topology":{"msg_timeout":1.5}}',
      '{"heartbeat_interval":1000,"x":{"heartbeat_interval":2.5}}',
      '{"list":[{"sample_rate":1e3}]}',
      '{"meta":{"client_id":1,"tls_v1":"yes","deflate_level":6.0}}',
    ]) {
      let req: IdentifyRequest | undefined;
      expect(() => {
        req = decode(json);
      }, json).not.toThrow();
      expect(Object.keys(req as IdentifyRequest).sort(), json).toEqual(KEYS);
    }
    expect(decode('{"heartbeat_interval":1000,"x":{"heartbeat_interval":2.5}}').heartbeat_interval).toBe(1000);
  });

  it('known-looking text inside string values is just text', () => {
    expect(decode('{"user_agent":"x\\"msg_timeout\\":1.5"}').user_agent).toBe('x"msg_timeout":1.5');
    expect(decode('{"client_id":"{\\"heartbeat_interval\\": 1e3}"}').client_id).toBe('{"heartbeat_interval": 1e3}');
  });

  it('keys match case-insensitively', () => {
    const req = decode(
      '{"CLIENT_ID":"a","HostName":"h","Feature_Negotiation":true,"HEARTBEAT_INTERVAL":1000,"Sample_Rate":5,"TLS_V1":true,"User_Agent":"ua"}',
    );
    expect(req).toEqual({
      ...DEFAULTS,
      client_id: 'a',
      hostname: 'h',
      feature_negotiation: true,
      heartbeat_interval: 1000,
      sample_rate: 5,
      tls_v1: true,
      user_agent: 'ua',
    });
    expect(Object.keys(req).sort()).toEqual(KEYS);
  });

  it('with the same key twice (in any case) the last one wins, as in Go', () => {
    expect(decode('{"client_id":"a","CLIENT_ID":"b"}').client_id).toBe('b');
    expect(decode('{"CLIENT_ID":"b","client_id":"a"}').client_id).toBe('a');
    expect(decode('{"msg_timeout":2000,"msg_timeout":3000}').msg_timeout).toBe(3000);
  });

  it('null leaves the default for every kind of field', () => {
    const req = decode(
      '{"client_id":null,"feature_negotiation":null,"heartbeat_interval":null,"sample_rate":null,"tls_v1":null,"user_agent":null}',
    );
    expect(req).toEqual(DEFAULTS);
  });

  it('null after a value in a case-variant key leaves that value (null has no effect in Go)', () => {
    expect(decode('{"client_id":"a","CLIENT_ID":null}').client_id).toBe('a');
    expect(decode('{"heartbeat_interval":1000,"HEARTBEAT_INTERVAL":null}').heartbeat_interval).toBe(1000);
  });

  it('explicit zero values and empty strings decode to themselves', () => {
    expect(decode('{"client_id":"","heartbeat_interval":0,"tls_v1":false,"sample_rate":0}')).toEqual(DEFAULTS);
  });

  it('int fields accept the full integer range; sample_rate is an int32', () => {
    expect(decode('{"heartbeat_interval":9007199254740991}').heartbeat_interval).toBe(Number.MAX_SAFE_INTEGER);
    expect(decode('{"msg_timeout":-9007199254740991}').msg_timeout).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decode('{"sample_rate":2147483647}').sample_rate).toBe(2147483647);
  });

  it('sample_rate accepts the int32 minimum -2147483648 (Go int32 range is [-2^31, 2^31-1])', () => {
    expect(decode('{"sample_rate":-2147483648}').sample_rate).toBe(-2147483648);
  });

  it('strings keep their unicode content', () => {
    expect(decode('{"client_id":"h\\u00e9te \u00fc \ud83d\ude00","user_agent":"a\\nb"}')).toMatchObject({
      client_id: 'h\u00e9te \u00fc \ud83d\ude00',
      user_agent: 'a\nb',
    });
  });

  it('invalid UTF-8 inside a string is replaced by U+FFFD, not an error (as Go does)', () => {
    const body = Buffer.concat([Buffer.from('{"client_id":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect(decode(body).client_id).toBe('\ufffd(');
  });

  it('whitespace around the document is allowed', () => {
    expect(decode(' \n\t{ "tls_v1" : true }\r\n ').tls_v1).toBe(true);
  });
});

describe('decodeIdentifyBody: refused bodies throw IdentifyDecodeError', () => {
  it('invalid JSON', () => {
    for (const json of [
      '',
      ' ',
      '{',
      '{"client_id":"a"',
      '{client_id:"a"}',
      "{'client_id':'a'}",
      '{"a":1,}',
      '{} {}',
      'nul',
      'NaN',
    ]) {
      expectDecodeError(json);
    }
  });

  it('a byte order mark before the document (Go refuses it)', () => {
    expectDecodeError(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]));
  });

  it('a body that is not an object: array, string, number, boolean', () => {
    for (const json of ['[]', '[{"client_id":"a"}]', '"client_id"', '42', 'true', 'false']) expectDecodeError(json);
  });

  it('a string for an int field', () => {
    expectDecodeError('{"heartbeat_interval":"1000"}');
    expectDecodeError('{"msg_timeout":""}');
    expectDecodeError('{"sample_rate":"5"}');
  });

  it('a fractional number for an int field', () => {
    expectDecodeError('{"heartbeat_interval":1000.5}');
    expectDecodeError('{"output_buffer_size":0.1}');
    expectDecodeError('{"sample_rate":-1.5}');
  });

  it('a number written with a fraction or exponent for an int field, even if integral (Go ParseInt refuses it)', () => {
    expectDecodeError('{"heartbeat_interval":1000.0}');
    expectDecodeError('{"msg_timeout":1e3}');
    expectDecodeError('{"deflate_level":6E0}');
  });

  it('an integral number with a fraction or exponent under a key written with escapes (Go unescapes keys first)', () => {
    expectDecodeError('{"heartbeat\\u005finterval":1000.0}');
    expectDecodeError('{"\\u006dsg_timeout":1e3}');
  });

  it('an int out of range: sample_rate beyond int32, others beyond what a double holds exactly', () => {
    expectDecodeError('{"sample_rate":2147483648}');
    expectDecodeError('{"sample_rate":-2147483649}');
    expectDecodeError('{"heartbeat_interval":1e400}');
  });

  it('a bool, object or array for an int field', () => {
    expectDecodeError('{"heartbeat_interval":true}');
    expectDecodeError('{"heartbeat_interval":{}}');
    expectDecodeError('{"heartbeat_interval":[1000]}');
  });

  it('a bool, number, object or array for a string field', () => {
    expectDecodeError('{"client_id":true}');
    expectDecodeError('{"hostname":1}');
    expectDecodeError('{"user_agent":{}}');
    expectDecodeError('{"client_id":["a"]}');
  });

  it('a string, number, object or array for a bool field', () => {
    expectDecodeError('{"feature_negotiation":"true"}');
    expectDecodeError('{"tls_v1":1}');
    expectDecodeError('{"snappy":0}');
    expectDecodeError('{"deflate":{}}');
    expectDecodeError('{"tls_v1":[true]}');
  });

  it('a wrong type in a case-variant key is still an error', () => {
    expectDecodeError('{"Heartbeat_Interval":"1000"}');
    expectDecodeError('{"TLS_V1":"yes"}');
  });

  it('a wrong type is an error even when other fields are fine or a later case-variant value is right', () => {
    expectDecodeError('{"client_id":"a","heartbeat_interval":"x","tls_v1":true}');
    expectDecodeError('{"heartbeat_interval":"x","Heartbeat_Interval":1000}');
  });

  it('IdentifyDecodeError is an Error named IdentifyDecodeError', () => {
    try {
      decode('[]');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(Error);
      expect(err).toBeInstanceOf(IdentifyDecodeError);
      expect((err as Error).name).toBe('IdentifyDecodeError');
    }
  });
});
