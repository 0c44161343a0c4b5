import { describe, expect, it } from 'vitest';
import { HeldList, type HeldItem } from '../../src/core/held-list.js';

class Item implements HeldItem {
  prevHeld: HeldItem | null = null;
  nextHeld: HeldItem | null = null;
  inHeld = false;
  constructor(readonly name: string) {}
}

const names = (list: HeldList<Item>) => [...list].map((i) => i.name);

describe('HeldList', () => {
  it('keeps items oldest first, with their count, and adds an item once', () => {
    const list = new HeldList<Item>();
    const [a, b, c] = [new Item('a'), new Item('b'), new Item('c')];
    list.add(a);
    list.add(b);
    list.add(c);
    list.add(b);
    expect(names(list)).toEqual(['a', 'b', 'c']);
    expect(list.size).toBe(3);
    expect(list.has(b)).toBe(true);
  });

  it('deletes from the head, the middle and the tail, and clears the links of what left', () => {
    const list = new HeldList<Item>();
    const items = ['a', 'b', 'c', 'd'].map((n) => new Item(n));
    for (const item of items) list.add(item);
    expect(list.delete(items[1])).toBe(true);
    expect(names(list)).toEqual(['a', 'c', 'd']);
    expect(list.delete(items[0])).toBe(true);
    expect(list.delete(items[3])).toBe(true);
    expect(names(list)).toEqual(['c']);
    expect(list.delete(items[3])).toBe(false);
    expect(list.size).toBe(1);
    // What left refers to nothing, so nothing it points to is kept alive through it.
    for (const gone of [items[0], items[1], items[3]]) expect([gone.prevHeld, gone.nextHeld, gone.inHeld]).toEqual([null, null, false]);
    list.delete(items[2]);
    expect([...list]).toEqual([]);
    expect(list.size).toBe(0);
    list.add(items[1]);
    expect(names(list)).toEqual(['b']);
  });

  it('lets an iteration delete the item it is on', () => {
    const list = new HeldList<Item>();
    for (const n of ['a', 'b', 'c']) list.add(new Item(n));
    const seen: string[] = [];
    for (const item of list) {
      seen.push(item.name);
      list.delete(item);
    }
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(list.size).toBe(0);
  });
});
