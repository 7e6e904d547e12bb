import type { LogLevel } from '@nsq-ts/go-compat';

/** nsqadmin's options: NSQ v1.3.0's main nsqadmin flags in camelCase. Durations are milliseconds. */
export interface AdminOptions {
  /** `host:port` for the UI and API; port 0 picks a free one. */
  httpAddress: string;
  /** nsqlookupd HTTP addresses (`host:port`) the cluster is discovered through. */
  lookupdHttpAddresses: string[];
  /** nsqd HTTP addresses read directly (with or without lookupds). */
  nsqdHttpAddresses: string[];
  /** URL prefix everything is served under, e.g. `/admin`; '' or `/` for the root. */
  basePath: string;
  /** Users allowed to act (create, pause, empty, delete, tombstone); empty: everyone. */
  adminUsers: string[];
  /** The request header naming the user (set by an authenticating proxy). */
  aclHttpHeader: string;
  /** A URL that receives a JSON event (POST) for every action; '' for none. */
  notificationHttpEndpoint: string;
  /**
   * How often nsqadmin reads the whole cluster (every nsqd's /stats) to compute rates, keep
   * their history and push the live view — whether or not a browser is watching. An nsq-ts
   * extension (`--sample-interval`).
   */
  sampleIntervalMs: number;
  /** How far back the rate history reaches (`--rate-history`, an nsq-ts extension). */
  rateHistoryMs: number;
  httpClientRequestTimeoutMs: number;
  logLevel: LogLevel;
  logPrefix: string;
  /** Sent as `Authorization: Bearer` to nsqd and nsqlookupd (their --http-auth-token); '' for none. */
  httpAuthToken: string;
  /**
   * Built-in login (an nsq-ts extension): when set, actions need this password, as a Bearer token
   * or through the session cookie POST /api/login sets. '' (the default): no login, as NSQ.
   */
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
