/**
 * `@nsq-ts/http-client`: one client for the HTTP APIs of nsqd and nsqlookupd, discovery of a
 * topic's producers across several lookupds, and typed calls for nsq-ts's delivery policies.
 */
export * from './delivery-policies.js';
export { type LookupProducer, type LookupResult, lookupProducers } from './lookup-producers.js';
export {
  NsqHttpClient,
  type NsqHttpClientOptions,
  NsqHttpError,
  type NsqHttpMethod,
  nsqBaseUrl,
  nsqQuery,
} from './nsq-http-client.js';
