/**
 * Deadlines kept in an intrusive doubly linked list sorted by due time.
 *
 * Every item of one queue is scheduled `threshold` after "now", so new deadlines almost always
 * belong at the tail: insertion is O(1) in that case (it walks back from the tail otherwise),
 * removal is O(1), and popping what is due costs only what is due. Nothing is allocated per item:
 * the item carries its own links.
 */
export interface DeadlineItem {
  dueAt: number;
  prevDue: DeadlineItem | null;
  nextDue: DeadlineItem | null;
  queued: boolean;
}

export class DeadlineQueue<T extends DeadlineItem> {
  private head: T | null = null;
  private tail: T | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** The earliest due time, or Infinity when empty. */
  get nextDueAt(): number {
    return this.head ? this.head.dueAt : Infinity;
  }

  schedule(item: T, dueAt: number): void {
    if (item.queued) this.remove(item);
    item.dueAt = dueAt;
    let after = this.tail;
    while (after !== null && after.dueAt > dueAt) after = after.prevDue as T | null;
    item.prevDue = after;
    item.nextDue = after ? after.nextDue : this.head;
    if (item.nextDue) item.nextDue.prevDue = item;
    else this.tail = item;
    if (after) after.nextDue = item;
    else this.head = item;
    item.queued = true;
    this.count++;
  }

  remove(item: T): void {
    if (!item.queued) return;
    if (item.prevDue) item.prevDue.nextDue = item.nextDue;
    else this.head = item.nextDue as T | null;
    if (item.nextDue) item.nextDue.prevDue = item.prevDue;
    else this.tail = item.prevDue as T | null;
    item.prevDue = item.nextDue = null;
    item.queued = false;
    this.count--;
  }

  /** Removes and returns the earliest item if it is due at `now`, else null. */
  popDue(now: number): T | null {
    const head = this.head;
    if (head === null || head.dueAt > now) return null;
    this.remove(head);
    return head;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let item = this.head; item !== null; item = item.nextDue as T | null) yield item;
  }
}
