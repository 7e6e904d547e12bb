/**
 * httprouter v1.3.0 with HandleMethodNotAllowed, as NSQ's daemons route. A miss is answered, in its
 * order: a 301 (GET) / 307 redirect to the same method's route with the trailing slash toggled or the
 * path cleaned, matched case-insensitively; OPTIONS 200 with a sorted `Allow`; 405 with it; 404.
 */

import { goUnescape } from '@nsq-ts/go-compat';

/** What to answer a request no route took. */
export type RouteMiss =
  | { readonly kind: 'redirect'; readonly status: 301 | 307; readonly location: string }
  | { readonly kind: 'options'; readonly allow: string }
  | { readonly kind: 'not-allowed'; readonly allow: string }
  | { readonly kind: 'not-found' };

export interface RouteMatch<H> {
  readonly handler: H;
  readonly params: Readonly<Record<string, string>>;
}

interface Route<H> {
  /** Segments after the leading `/`; `:name` is a parameter, '' a trailing slash. */
  readonly segments: readonly string[];
  readonly handler: H;
}

export class GoRouter<H> {
  private readonly byMethod = new Map<string, Route<H>[]>();

  add(method: string, path: string, handler: H): void {
    let routes = this.byMethod.get(method);
    if (routes === undefined) {
      routes = [];
      this.byMethod.set(method, routes);
    }
    routes.push({ segments: path.slice(1).split('/'), handler });
  }

  /** The route for `path` (decoded, as Go's URL.Path), or null. */
  find(method: string, path: string): RouteMatch<H> | null {
    const routes = this.byMethod.get(method);
    return routes === undefined ? null : match(routes, path.slice(1).split('/'), false);
  }

  /** httprouter's answer when `find` found nothing; `rawQuery` goes into a redirect's Location. */
  miss(method: string, path: string, rawQuery: string): RouteMiss {
    const routes = this.byMethod.get(method);
    if (routes !== undefined && method !== 'CONNECT' && path !== '/') {
      const status = method === 'GET' ? 301 : 307;
      const location = (fixed: string): RouteMiss => ({
        kind: 'redirect',
        status,
        location: escapePath(fixed) + (rawQuery === '' ? '' : `?${rawQuery}`),
      });
      const toggled = path.endsWith('/') ? path.slice(0, -1) : `${path}/`;
      if (toggled !== '' && match(routes, toggled.slice(1).split('/'), false) !== null) return location(toggled);
      const fixed = fixPath(routes, cleanPath(path));
      if (fixed !== null) return location(fixed);
    }
    const allow = this.allowed(path, method);
    if (method === 'OPTIONS') return allow === '' ? { kind: 'not-found' } : { kind: 'options', allow };
    return allow === '' ? { kind: 'not-found' } : { kind: 'not-allowed', allow };
  }

  /** The `Allow` list of `path` for a request of `method`, '' when no other method has it. */
  private allowed(path: string, method: string): string {
    const methods: string[] = [];
    for (const [m, routes] of this.byMethod) {
      if (m === method || m === 'OPTIONS') continue;
      if (path === '*' || match(routes, path.slice(1).split('/'), false) !== null) methods.push(m);
    }
    if (methods.length === 0) return '';
    methods.push('OPTIONS');
    return methods.sort().join(', ');
  }
}

/** The first route matching `segments` (static segments compared case-insensitively if asked). */
function match<H>(routes: readonly Route<H>[], segments: readonly string[], anyCase: boolean): RouteMatch<H> | null {
  for (const route of routes) {
    const want = route.segments;
    if (want.length !== segments.length) continue;
    const params: Record<string, string> = {};
    let ok = true;
    for (let i = 0; i < want.length && ok; i++) {
      const w = want[i] as string;
      const got = segments[i] as string;
      if (w.startsWith(':')) {
        if (got === '') ok = false;
        else params[w.slice(1)] = got;
      } else {
        ok = w === got || (anyCase && w.toLowerCase() === got.toLowerCase());
      }
    }
    if (ok) return { handler: route.handler, params };
  }
  return null;
}

/** httprouter's findCaseInsensitivePath with its trailing-slash fix. */
function fixPath<H>(routes: readonly Route<H>[], path: string): string | null {
  const candidates = [path];
  if (path.length > 1) candidates.push(path.endsWith('/') ? path.slice(0, -1) : `${path}/`);
  for (const candidate of candidates) {
    const segments = candidate.slice(1).split('/');
    for (const route of routes) {
      if (match([route], segments, true) === null) continue;
      return `/${route.segments.map((s, i) => (s.startsWith(':') ? segments[i] : s)).join('/')}`;
    }
  }
  return null;
}

/** httprouter's CleanPath: path.Clean that keeps a trailing slash and always starts with `/`. */
export function cleanPath(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  const cleaned = `/${out.join('/')}`;
  const trailing = path.length > 1 && (path.endsWith('/') || path.endsWith('/.') || path.endsWith('/..'));
  return trailing && cleaned !== '/' ? `${cleaned}/` : cleaned;
}

/** Bytes Go's url.PathEscape leaves alone in a path (shouldEscape, encodePath). */
const PATH_SAFE = /[A-Za-z0-9\-_.~$&+,/:;=@]/;

/** A decoded path escaped as Go's URL.EscapedPath writes it for a redirect's Location. */
export function escapePath(path: string): string {
  let out = '';
  for (const ch of path) {
    if (PATH_SAFE.test(ch)) {
      out += ch;
      continue;
    }
    for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** As Go's URL.Path (`+` stays); null for a bad escape, which Go's server answers 400. */
export function decodePath(raw: string): string | null {
  return goUnescape(raw, false);
}

const STATUS_TEXT: Readonly<Record<number, string>> = { 301: 'Moved Permanently', 307: 'Temporary Redirect' };

/** The body Go's http.Redirect writes for a GET: a link to the new location. */
export function redirectBody(status: number, location: string): string {
  const href = location.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
  return `<a href="${href}">${STATUS_TEXT[status] ?? ''}</a>.\n\n`;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&#34;',
  "'": '&#39;',
};
