import { hostname } from 'node:os';

export const USER_AGENT = 'nsq-ts/0.1.0';

export const HOSTNAME: string = hostname();

export const CONSUMER_DEFAULTS = {
  maxInFlight: 1,
  /** 0: retry forever. */
  maxAttempts: 0,
  requeueDelayMs: 90_000,
  maxRequeueDelayMs: 900_000,
  backoffMinDelayMs: 1_000,
  backoffMaxDelayMs: 120_000,
  lookupdPollIntervalMs: 60_000,
  lookupdTimeoutMs: 5_000,
  rdyRedistributeIntervalMs: 1_000,
  dialTimeoutMs: 5_000,
  reconnectMinDelayMs: 250,
  reconnectMaxDelayMs: 30_000,
  closeTimeoutMs: 30_000,
} as const;

export const PRODUCER_DEFAULTS = {
  dialTimeoutMs: 5_000,
  reconnectMinDelayMs: 250,
  reconnectMaxDelayMs: 30_000,
  publishTimeoutMs: 30_000,
  maxPublishAttempts: 5,
  epsilon: 0.1,
  closeTimeoutMs: 5_000,
} as const;

/** 0 asks nsqd for its own default; the deflate level is nsqjs's and go-nsq's. */
export const IDENTIFY_DEFAULTS = {
  heartbeatIntervalMs: 0,
  outputBufferSize: 0,
  outputBufferTimeoutMs: 0,
  deflateLevel: 6,
  sampleRate: 0,
  msgTimeoutMs: 0,
} as const;

/** What a connection assumes until (or unless) nsqd's IDENTIFY reply says otherwise: NSQ's defaults. */
export const NSQD_DEFAULTS = {
  maxRdyCount: 2500,
  msgTimeoutMs: 60_000,
  maxMsgTimeoutMs: 900_000,
  heartbeatIntervalMs: 30_000,
  deflateLevel: 6,
} as const;

export type Settings<D> = { readonly [K in keyof D]: number };

export function withDefaults<D extends Readonly<Record<string, number>>>(
  given: { readonly [K in keyof D]?: number | undefined },
  defaults: D,
): Settings<D> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(defaults) as Array<keyof D & string>) out[key] = given[key] ?? defaults[key];
  return out as Settings<D>;
}
