export { startLookupd, startNsqd, type TestLookupd, type TestNsqd } from './daemons.js';
export { eventually } from './eventually.js';
export { ManualClock, ManualTimer } from './manual-clock.js';
export type { Nsqjs, NsqjsMessage, NsqjsReader, NsqjsReaderOptions } from './nsqjs.js';
export { RawClient, type RawFrame } from './raw-client.js';
export { RawV1Client } from './raw-v1-client.js';
