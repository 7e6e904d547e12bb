export { startNsqd, type TestNsqd } from './daemons.js';
export { eventually } from './eventually.js';
export { RawClient, type RawFrame } from './raw-client.js';
