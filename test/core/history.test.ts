import { describe, expect, it } from 'vitest';
import { History } from '../../src/core/history.js';

describe('History', () => {
  describe('when fewer events than its capacity are added', () => {
    it('gives them back oldest first, with their values, and counts none dropped', () => {
      const history = new History(4);
      history.add(10, 'wrote', 512);
      history.add(20, 'waited');
      expect(history.entries()).toEqual([
        { at: 10, event: 'wrote', value: 512 },
        { at: 20, event: 'waited', value: 0 },
      ]);
      expect(history.dropped).toBe(0);
    });
  });

  describe('when more events than its capacity are added', () => {
    it('keeps the newest, in order, and counts the ones it overwrote', () => {
      const history = new History(3);
      for (let i = 1; i <= 7; i++) history.add(i, i % 2 === 0 ? 'busy' : 'idle');
      expect(history.entries().map((e) => e.at)).toEqual([5, 6, 7]);
      expect(history.dropped).toBe(4);
    });
  });

  describe('enter(state)', () => {
    it('records a transition only when the state changes', () => {
      const history = new History(8);
      history.enter(1, 'idle');
      history.enter(2, 'idle');
      history.enter(3, 'busy');
      history.add(4, 'confirmed');
      history.enter(5, 'busy');
      expect(history.entries().map((e) => `${e.at} ${e.event}`)).toEqual(['1 idle', '3 busy', '4 confirmed']);
    });
  });

  describe('reset()', () => {
    it('empties it for reuse, the last state included', () => {
      const history = new History(2);
      history.enter(1, 'idle');
      history.add(2, 'busy');
      history.add(3, 'idle');
      history.reset();
      expect(history.entries()).toEqual([]);
      expect(history.dropped).toBe(0);
      history.enter(4, 'idle');
      expect(history.entries()).toEqual([{ at: 4, event: 'idle', value: 0 }]);
    });
  });
});
