/** `@nsq-ts/http-client`: nsqd/nsqlookupd HTTP APIs, producer discovery, delivery-policy and replica-group calls. */
export * from './delivery-policies.js';
export {
  type HaCounters,
  type HaDeposeReason,
  type HaFollowerLag,
  type HaStatus,
  haHandover,
  haStatus,
} from './ha.js';
export { type LookupProducer, type LookupResult, lookupProducers } from './lookup-producers.js';
export {
  NsqHttpClient,
  type NsqHttpClientOptions,
  NsqHttpError,
  type NsqHttpMethod,
  nsqBaseUrl,
  nsqQuery,
} from './nsq-http-client.js';
