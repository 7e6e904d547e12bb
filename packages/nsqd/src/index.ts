export { Channel } from './channel.js';
export type { Consumer } from './consumer.js';
export { createLogger, type Logger } from './logger.js';
export { createNsqd, Nsqd } from './nsqd.js';
export { defaultNsqdOptions, LOG_LEVELS, type LogLevel, type NsqdOptions } from './options.js';
export { ClientState, ClientV2 } from './tcp/client-v2.js';
export { Topic } from './topic.js';
export { VERSION } from './version.js';
