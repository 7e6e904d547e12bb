export { ManualClock } from '@nsq-ts/test-utils';
