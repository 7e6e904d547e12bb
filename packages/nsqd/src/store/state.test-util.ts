import { channelStateOps, type StateOp, topicStateOp } from './state-store.js';

/** Topic `t` and its channel `c` at `cursor`, as a flush would store them. */
export function sampleState(cursor: number): StateOp[] {
  const ops = [
    topicStateOp('t', { changes: 1, paused: false, settings: {}, nextOffset: 5, releaseMark: 0, skips: [] }),
  ];
  channelStateOps(
    't',
    'c',
    {
      changes: 1,
      cursor,
      paused: false,
      settings: {},
      hot: new Float64Array([1, 2]),
      ahead: [],
      deferredPuts: [{ offset: 2, attempts: 1, dueAtWallMs: 99 }],
      deferredDeletes: [],
      floor: 1,
    },
    ops,
  );
  return ops;
}
