import type { EventEmitter } from 'node:events';

/**
 * The slice of nsqjs's (untyped, CommonJS) Reader API that tests drive. Load it in the test with
 * `createRequire(import.meta.url)('nsqjs') as Nsqjs` (nsqjs is the repository's dev dependency).
 */

export interface NsqjsMessage {
  readonly id: string;
  readonly attempts: number;
  readonly body: Buffer;
  finish(): void;
}

/** Emits `message` (an NsqjsMessage), `error`, `nsqd_connected`, `nsqd_closed`. */
export interface NsqjsReader extends EventEmitter {
  connect(): void;
  close(): void;
}

export interface NsqjsReaderOptions {
  nsqdTCPAddresses?: string[];
  lookupdHTTPAddresses?: string[];
  /** Seconds. */
  lookupdPollInterval?: number;
  maxInFlight?: number;
  /** Seconds. */
  heartbeatInterval?: number;
  clientId?: string;
}

export interface Nsqjs {
  Reader: new (topic: string, channel: string, options: NsqjsReaderOptions) => NsqjsReader;
}
