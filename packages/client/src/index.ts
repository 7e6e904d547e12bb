/** The typed delivery-policy calls of an nsq-ts nsqd (max attempts, dead letters, caps, replay, redrive). */
export {
  type ChannelConfig,
  type ChannelConfigUpdate,
  getChannelConfig,
  getTopicConfig,
  isReplayUnavailable,
  NsqHttpClient,
  type NsqHttpClientOptions,
  NsqHttpError,
  type OverflowPolicy,
  type PolicyDuration,
  type RedriveResult,
  type ReplayFrom,
  redriveTopic,
  replayChannel,
  setChannelConfig,
  setTopicConfig,
  type TopicConfig,
  type TopicConfigUpdate,
} from '@nsq-ts/http-client';
export { type BackoffOptions, backoffDelayMs } from './backoff.js';
export { bytesCodec, type Codec, jsonCodec, msgpackCodec, rawCodec, stringCodec } from './codecs.js';
export {
  Consumer,
  type ConsumerBaseOptions,
  type ConsumerCodecOption,
  type ConsumerEvents,
  type ConsumerOptions,
  type ConsumerStats,
  type MessageHandler,
} from './consumer.js';
export { ClientError, ClientErrorCode, ErrorCode, type NsqError, ProtocolError } from './errors.js';
export type { IdentifyOptions } from './identify.js';
export type { Logger } from './logger.js';
export { LookupError, lookupProducers } from './lookup.js';
export { Message } from './message.js';
export {
  Producer,
  type ProducerBaseOptions,
  type ProducerCodecOption,
  type ProducerHostStatus,
  type ProducerOptions,
} from './producer.js';
