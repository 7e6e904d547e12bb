import type { IncomingHttpHeaders } from 'node:http';

/**
 * CSRF protection for state-changing endpoints; refuses when any check fails:
 * 1. `Sec-Fetch-Site` other than `same-origin`/`none`; 2. an `Origin` not this server's own (`null` never is),
 * as Go 1.25's net/http CrossOriginProtection; 3. no JSON body nor `X-Requested-With` (both need a CORS
 * preflight, never granted). curl and scripts send neither header and need only 3.
 */

export interface CsrfRefusal {
  readonly message: 'CROSS_ORIGIN_REQUEST_REFUSED' | 'CSRF_HEADER_REQUIRED';
  /** One sentence for the operator: what was refused and how to send it instead. */
  readonly reason: string;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** The host part (`host:port`) of an origin; null when it is no http(s) origin. */
function originHost(origin: string): string | null {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.host : null;
  } catch {
    return null;
  }
}

/** Why a request must be refused as a possible forgery; null when it may proceed. */
export function csrfRefusal(method: string, headers: IncomingHttpHeaders): CsrfRefusal | null {
  if (SAFE_METHODS.has(method.toUpperCase())) return null;
  const site = header(headers, 'sec-fetch-site');
  const origin = header(headers, 'origin');
  const host = (header(headers, 'host') ?? '').toLowerCase();
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return {
      message: 'CROSS_ORIGIN_REQUEST_REFUSED',
      reason: `a ${site} request (from ${origin ?? 'another page'}) may not change the cluster; use nsqadmin's own pages`,
    };
  }
  if (site === undefined && origin !== undefined && originHost(origin) !== host) {
    return {
      message: 'CROSS_ORIGIN_REQUEST_REFUSED',
      reason: `Origin ${origin} is not this nsqadmin (${host}); use nsqadmin's own pages`,
    };
  }
  if (mediaType(header(headers, 'content-type')) !== 'application/json' && !headers['x-requested-with']) {
    return {
      message: 'CSRF_HEADER_REQUIRED',
      reason: 'send a JSON body (Content-Type: application/json) or an X-Requested-With header',
    };
  }
  return null;
}

/** Whether a WebSocket upgrade may proceed: not from another origin (the snapshot is the cluster). */
export function webSocketOriginAllowed(headers: IncomingHttpHeaders): boolean {
  const origin = header(headers, 'origin');
  if (origin === undefined) return true;
  return originHost(origin) === (header(headers, 'host') ?? '').toLowerCase();
}
