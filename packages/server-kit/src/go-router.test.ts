import { describe, expect, it } from 'vitest';
import { cleanPath, decodePath, escapePath, GoRouter } from './go-router.js';

function router(): GoRouter<string> {
  const r = new GoRouter<string>();
  r.add('GET', '/ping', 'ping');
  r.add('GET', '/config/:opt', 'get config');
  r.add('PUT', '/config/:opt', 'put config');
  r.add('POST', '/topic/create', 'create');
  r.add('GET', '/debug/pprof/', 'pprof');
  return r;
}

describe('GoRouter', () => {
  it('matches static paths exactly and :params to one non-empty segment', () => {
    const r = router();
    expect(r.find('GET', '/ping')).toEqual({ handler: 'ping', params: {} });
    expect(r.find('GET', '/config/log_level')).toEqual({ handler: 'get config', params: { opt: 'log_level' } });
    expect(r.find('GET', '/config/')).toBeNull();
    expect(r.find('GET', '/config/a/b')).toBeNull();
    expect(r.find('GET', '/PING')).toBeNull();
    expect(r.find('POST', '/ping')).toBeNull();
  });

  it('redirects a toggled trailing slash, then a cleaned or case-fixed path, of the same method', () => {
    const r = router();
    expect(r.miss('GET', '/ping/', '')).toEqual({ kind: 'redirect', status: 301, location: '/ping' });
    expect(r.miss('GET', '/debug/pprof', 'x=1')).toEqual({
      kind: 'redirect',
      status: 301,
      location: '/debug/pprof/?x=1',
    });
    expect(r.miss('POST', '/Topic/Create/', '')).toEqual({ kind: 'redirect', status: 307, location: '/topic/create' });
    expect(r.miss('GET', '//config/./a/../log_level', '')).toEqual({
      kind: 'redirect',
      status: 301,
      location: '/config/log_level',
    });
    expect(r.miss('PUT', '/CONFIG/Mixed', '')).toEqual({ kind: 'redirect', status: 307, location: '/config/Mixed' });
  });

  it('answers OPTIONS and 405 with the sorted Allow list, 404 otherwise', () => {
    const r = router();
    expect(r.miss('POST', '/ping', '')).toEqual({ kind: 'not-allowed', allow: 'GET, OPTIONS' });
    expect(r.miss('DELETE', '/config/x', '')).toEqual({ kind: 'not-allowed', allow: 'GET, OPTIONS, PUT' });
    expect(r.miss('OPTIONS', '/config/x', '')).toEqual({ kind: 'options', allow: 'GET, OPTIONS, PUT' });
    expect(r.miss('OPTIONS', '*', '')).toEqual({ kind: 'options', allow: 'GET, OPTIONS, POST, PUT' });
    expect(r.miss('OPTIONS', '/nope', '')).toEqual({ kind: 'not-found' });
    expect(r.miss('GET', '/nope', '')).toEqual({ kind: 'not-found' });
    // A POST to /ping/ has no POST route to be redirected to, and no method has /ping/.
    expect(r.miss('POST', '/ping/', '')).toEqual({ kind: 'not-found' });
    expect(r.miss('GET', '/', '')).toEqual({ kind: 'not-found' });
  });
});

describe('paths', () => {
  it('cleanPath keeps a trailing slash and a leading one', () => {
    expect(cleanPath('')).toBe('/');
    expect(cleanPath('a/b')).toBe('/a/b');
    expect(cleanPath('//a//b/')).toBe('/a/b/');
    expect(cleanPath('/a/./b/../c')).toBe('/a/c');
    expect(cleanPath('/../a')).toBe('/a');
    expect(cleanPath('/a/b/..')).toBe('/a/');
  });

  it("decodePath decodes %XX leniently and refuses bad escapes; escapePath writes Go's Location", () => {
    expect(decodePath('/a%20b%2F')).toBe('/a b/');
    expect(decodePath('/a+b')).toBe('/a+b');
    expect(decodePath('/%zz')).toBeNull();
    expect(decodePath('/%e2%82%ac')).toBe('/€');
    expect(escapePath('/a b/€?#')).toBe('/a%20b/%E2%82%AC%3F%23');
    expect(escapePath("/a-_.~$&+,:;=@'")).toBe('/a-_.~$&+,:;=@%27');
  });
});
