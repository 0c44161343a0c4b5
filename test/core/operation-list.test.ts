import { describe, expect, it } from 'vitest';
import { OperationList, type ConnectionRecord, type PendingOperation } from '../../src/core/records.js';

const operation = (command: string): PendingOperation => ({ connection: null as unknown as ConnectionRecord, command, startedAt: 0 });

describe('OperationList', () => {
  it('keeps operations in the order they started, and removes any of them', () => {
    const list = new OperationList();
    const [a, b, c] = ['get', 'blpop', 'set'].map(operation);
    for (const op of [a, b, c]) list.add(op);
    expect([...list].map((op) => op.command)).toEqual(['get', 'blpop', 'set']);
    expect(list.delete(b)).toBe(true);
    expect([...list].map((op) => op.command)).toEqual(['get', 'set']);
    expect(list.delete(a)).toBe(true);
    expect(list.delete(c)).toBe(true);
    expect([...list]).toEqual([]);
    expect(list.size).toBe(0);
  });

  it('ignores adding twice and removing what it does not hold', () => {
    const list = new OperationList();
    const other = new OperationList();
    const a = operation('get');
    list.add(a);
    list.add(a);
    expect(list.size).toBe(1);
    expect(other.delete(a)).toBe(false);
    expect(list.delete(a)).toBe(true);
    expect(list.delete(a)).toBe(false);
    list.add(a);
    expect([...list]).toEqual([a]);
  });

  it('adds nothing that serialization sees', () => {
    const list = new OperationList();
    const a = operation('get');
    list.add(a);
    list.add(operation('set'));
    expect(Object.keys(a)).toEqual(['connection', 'command', 'startedAt']);
    expect(JSON.stringify(a)).toBe('{"connection":null,"command":"get","startedAt":0}');
  });
});
