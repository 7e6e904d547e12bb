/**
 * Retention's memory of when every channel had finished what: [floor, monotonic ms] marks,
 * coarsened to buckets of retention/64 so a long retention keeps few of them (a coarse mark
 * only keeps segments a little longer). After a restart marks start afresh: segments are kept
 * longer, never shorter.
 */
export class RetentionMarks {
  private marks: [number, number][] = [];
  private bucketStartMs = 0;
  /** Below it, every channel finished at least `retention` ago. */
  private retainedFloor = -1;

  /** Retention is off: the marks are forgotten. */
  clear(): void {
    this.marks = [];
  }

  /** Of the channels' `floor` now, the offset below which segments may be deleted: the floor as it was `retentionMs` ago. */
  deletableBelow(floor: number, retentionMs: number, nowMs: number): number {
    const marks = this.marks;
    const last = marks[marks.length - 1];
    if (last === undefined || floor > last[0]) {
      if (last !== undefined && nowMs - this.bucketStartMs < retentionMs / 64) {
        last[0] = floor;
        last[1] = nowMs;
      } else {
        marks.push([floor, nowMs]);
        this.bucketStartMs = nowMs;
      }
    }
    while (marks.length > 0 && (marks[0] as [number, number])[1] <= nowMs - retentionMs) {
      this.retainedFloor = Math.max(this.retainedFloor, (marks.shift() as [number, number])[0]);
    }
    // A replay moved a cursor back: what it needs again stays, whatever the marks say.
    return Math.min(floor, this.retainedFloor);
  }
}
