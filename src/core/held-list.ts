/**
 * The connections a ledger holds, as an intrusive doubly linked list: each item carries its own
 * links, and nothing else refers to it.
 *
 * A `Set` would do the same work, but it garbage-collects badly here. A checkout lives about a
 * millisecond; the set lives as long as the process, so V8 moves its table to the old generation,
 * and each time the set grows or shrinks it allocates a new table and leaves the old one behind,
 * still pointing at the checkouts that were in it. A young-generation collection keeps alive
 * whatever an old object points to, dead or not, until the next full collection. So each stale
 * table kept its checkouts alive, and they kept their requests, responses and sockets alive: on
 * the realistic endpoint (bench/realistic.bench.mjs) about 500 bytes a request were promoted to
 * the old generation where a bare app promotes none, and more full collections followed
 * (`--trace-gc-nvp`). The list does the same with no table: an item that leaves has its links
 * cleared, and no stale copy refers to it.
 */
export interface HeldItem {
  prevHeld: HeldItem | null;
  nextHeld: HeldItem | null;
  inHeld: boolean;
}

export class HeldList<T extends HeldItem> implements Iterable<T> {
  private head: T | null = null;
  private tail: T | null = null;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(item: T): boolean {
    return item.inHeld;
  }

  add(item: T): void {
    if (item.inHeld) return;
    item.prevHeld = this.tail;
    item.nextHeld = null;
    if (this.tail !== null) this.tail.nextHeld = item;
    else this.head = item;
    this.tail = item;
    item.inHeld = true;
    this.count++;
  }

  delete(item: T): boolean {
    if (!item.inHeld) return false;
    if (item.prevHeld !== null) item.prevHeld.nextHeld = item.nextHeld;
    else this.head = item.nextHeld as T | null;
    if (item.nextHeld !== null) item.nextHeld.prevHeld = item.prevHeld;
    else this.tail = item.prevHeld as T | null;
    item.prevHeld = item.nextHeld = null;
    item.inHeld = false;
    this.count--;
    return true;
  }

  /**
   * Oldest first. Deleting the item just yielded is safe (its successor is read first); a caller
   * that deletes others while iterating iterates a copy (`[...held]`).
   */
  *[Symbol.iterator](): IterableIterator<T> {
    let item = this.head;
    while (item !== null) {
      const next = item.nextHeld as T | null;
      yield item;
      item = next !== null && next.inHeld ? next : null;
    }
  }
}
