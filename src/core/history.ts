import type { ConnectionState } from './records.js';

/**
 * What a history records besides the timestamps a record keeps anyway (started, acquired, closed,
 * released, leaked): a connection's state transitions and its server's answer, and what a response
 * was seen doing at each threshold check it passed (it wrote, or it waited on a busy connection).
 */
export type HistoryEvent = ConnectionState | 'wrote' | 'waited' | 'confirmed';

/** How many events a history keeps; older ones are overwritten and counted in `dropped`. */
export const HISTORY_CAPACITY = 16;

/**
 * The newest events of one response or connection, in a ring of fixed size: adding one allocates
 * nothing, so a history costs the same after a million transitions as after one. Times and values
 * share one array of doubles (unboxed, whatever the epoch milliseconds), events another.
 */
export class History {
  /** Events added since the last reset, overwritten ones included. */
  added = 0;
  private state: ConnectionState | null = null;
  private readonly numbers: number[];
  private readonly events: HistoryEvent[];

  constructor(readonly capacity: number = HISTORY_CAPACITY) {
    this.numbers = new Array<number>(capacity * 2).fill(Number.NaN);
    this.events = new Array<HistoryEvent>(capacity).fill('idle');
  }

  /** `value` is what the event measured, if anything (bytes written since the last check). */
  add(at: number, event: HistoryEvent, value = 0): void {
    const slot = this.added++ % this.capacity;
    this.numbers[slot * 2] = at;
    this.numbers[slot * 2 + 1] = value;
    this.events[slot] = event;
  }

  /** A transition to `state`; nothing when that is the state it entered last. */
  enter(at: number, state: ConnectionState): void {
    if (state === this.state) return;
    this.state = state;
    this.add(at, state);
  }

  /** Events overwritten by newer ones. */
  get dropped(): number {
    return this.added > this.capacity ? this.added - this.capacity : 0;
  }

  /** The events kept, oldest first; for reports, not the hot path. */
  entries(): Array<{ at: number; event: HistoryEvent; value: number }> {
    const kept = Math.min(this.added, this.capacity);
    const entries: Array<{ at: number; event: HistoryEvent; value: number }> = [];
    for (let i = this.added - kept; i < this.added; i++) {
      const slot = i % this.capacity;
      entries.push({ at: this.numbers[slot * 2], event: this.events[slot], value: this.numbers[slot * 2 + 1] });
    }
    return entries;
  }

  /** Forgets every event, for reuse by another record. */
  reset(): void {
    this.added = 0;
    this.state = null;
  }
}
