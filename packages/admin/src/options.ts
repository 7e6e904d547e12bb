import type { LogLevel } from '@nsq-ts/go-compat';

/** nsqadmin's options: NSQ v1.3.0's main nsqadmin flags in camelCase. Durations are milliseconds. */
export interface AdminOptions {
  /** `host:port` for the UI and API; port 0 picks a free one. */
  httpAddress: string;
  lookupdHttpAddresses: string[];
  /** Read directly (with or without lookupds). */
  nsqdHttpAddresses: string[];
  /** URL prefix everything is served under, e.g. `/admin`; '' or `/` for the root. */
  basePath: string;
  /** Users allowed to act; empty: everyone. */
  adminUsers: string[];
  /** Set by an authenticating proxy. */
  aclHttpHeader: string;
  /** A URL that receives a JSON event (POST) for every action; '' for none. */
  notificationHttpEndpoint: string;
  /** How often every nsqd's /stats is read for rates, history and the live view, watched or not (nsq-ts extension). */
  sampleIntervalMs: number;
  /** nsq-ts extension (`--rate-history`). */
  rateHistoryMs: number;
  httpClientRequestTimeoutMs: number;
  logLevel: LogLevel;
  logPrefix: string;
  /** Sent as `Authorization: Bearer` to nsqd and nsqlookupd (their --http-auth-token); '' for none. */
  httpAuthToken: string;
  /** nsq-ts extension: actions need this password (Bearer or the /api/login cookie); '' means no login, as NSQ. */
  adminPassword: string;
}

export function defaultAdminOptions(): AdminOptions {
  return {
    httpAddress: '0.0.0.0:4171',
    lookupdHttpAddresses: [],
    nsqdHttpAddresses: [],
    basePath: '/',
    adminUsers: [],
    aclHttpHeader: 'X-Forwarded-User',
    notificationHttpEndpoint: '',
    sampleIntervalMs: 2000,
    rateHistoryMs: 3 * 3600_000,
    httpClientRequestTimeoutMs: 5000,
    logLevel: 'info',
    logPrefix: '[nsqadmin] ',
    httpAuthToken: '',
    adminPassword: '',
  };
}

/** `/admin/` → `/admin`, `/` and '' → ''. */
export function normalizeBasePath(raw: string): string {
  const trimmed = raw.trim().replace(/\/+$/, '');
  if (trimmed === '') return '';
  return trimmed.startsWith('/') ? trimmed : `/${trimmed}`;
}
