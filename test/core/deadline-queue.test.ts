import { describe, expect, it } from 'vitest';
import { DeadlineQueue, type DeadlineItem } from '../../src/core/deadline-queue.js';

const item = (name: string): DeadlineItem & { name: string } => ({ name, dueAt: 0, prevDue: null, nextDue: null, queued: false });

describe('DeadlineQueue', () => {
  it('pops in due order whatever the insertion order, and only what is due', () => {
    const q = new DeadlineQueue<ReturnType<typeof item>>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(item);
    q.schedule(a, 30);
    q.schedule(b, 10);
    q.schedule(c, 20);
    q.schedule(d, 40);
    q.remove(d);
    expect(q.size).toBe(3);
    const popped: string[] = [];
    let x;
    while ((x = q.popDue(25))) popped.push(x.name);
    expect(popped).toEqual(['b', 'c']);
    expect(q.nextDueAt).toBe(30);
    q.schedule(a, 5); // reschedule moves it
    expect(q.size).toBe(1);
    expect(q.popDue(5)?.name).toBe('a');
    expect(q.popDue(1000)).toBeNull();
    expect(q.nextDueAt).toBe(Infinity);
  });
});
