import { describe, expect, it } from 'vitest';
import { findByAddress, parseClientList, serverStateName, serverStateOf, splitAddress } from '../../src/redis/client-list.js';

// Lines as Redis 7 writes them; the second is a subscriber with a client name, the third IPv6.
const LIST = [
  'id=20 addr=127.0.0.1:35650 laddr=127.0.0.1:6379 fd=8 name= age=12 idle=3 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=26 qbuf-free=20448 argv-mem=10 multi-mem=0 rbs=16384 rbp=16384 obl=0 oll=0 omem=0 tot-mem=37658 events=r cmd=client|list user=default redir=-1 resp=2',
  'id=21 addr=127.0.0.1:35652 laddr=127.0.0.1:6379 fd=9 name=app-worker age=40 idle=40 flags=P db=0 sub=1 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=1800 events=r cmd=subscribe user=default redir=-1 resp=3',
  'id=22 addr=[::1]:38348 laddr=[::1]:6379 fd=10 name= age=5 idle=5 flags=b db=0 sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=14 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=1800 events=r cmd=blpop user=default redir=-1 resp=2',
  '',
].join('\n');

describe('parseClientList(text)', () => {
  it('keeps id, addr, age, idle, flags and cmd of each line, and nothing else', () => {
    const entries = parseClientList(LIST);
    expect(entries).toEqual([
      { id: 20, addr: '127.0.0.1:35650', age: 12, idle: 3, flags: 'N', cmd: 'client|list' },
      { id: 21, addr: '127.0.0.1:35652', age: 40, idle: 40, flags: 'P', cmd: 'subscribe' },
      { id: 22, addr: '[::1]:38348', age: 5, idle: 5, flags: 'b', cmd: 'blpop' },
    ]);
    expect(JSON.stringify(entries)).not.toMatch(/app-worker/);
  });

  it('skips lines it cannot read', () => {
    expect(parseClientList('garbage\nid=x addr=1.2.3.4:5\n\n')).toEqual([]);
  });
});

describe('findByAddress(entries, localAddress, localPort)', () => {
  const entries = parseClientList(LIST);
  it('joins on address and port, IPv4, IPv6 and IPv4-mapped alike', () => {
    expect(findByAddress(entries, '127.0.0.1', 35652)?.id).toBe(21);
    expect(findByAddress(entries, '::ffff:127.0.0.1', 35650)?.id).toBe(20);
    expect(findByAddress(entries, '::1', 38348)?.id).toBe(22);
  });
  it('finds nothing for a port or host that is not there (a proxy or NAT in between)', () => {
    expect(findByAddress(entries, '127.0.0.1', 1)).toBeNull();
    expect(findByAddress(entries, '10.0.0.7', 35650)).toBeNull();
  });
  it('reads addresses only with a port', () => {
    expect(splitAddress('/tmp/redis.sock:0')).toBeNull();
    expect(splitAddress('[::1]:6379')).toEqual({ host: '::1', port: 6379 });
  });
});

describe('serverStateOf(entry)', () => {
  it('names the state from the flags and keeps the ages Redis gives, in seconds', () => {
    expect(['N', 'P', 'b', 'x', 'O'].map(serverStateName)).toEqual(['idle', 'subscriber', 'blocked', 'in-multi', 'monitor']);
    expect(serverStateOf(parseClientList(LIST)[1])).toEqual({
      clientId: 21,
      state: 'subscriber',
      stateAgeMs: 40_000,
      idle: 40,
      age: 40,
      flags: 'P',
      cmd: 'subscribe',
    });
  });
});
