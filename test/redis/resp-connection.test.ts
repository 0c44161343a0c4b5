import { spawnSync } from 'node:child_process';
import net from 'node:net';
import IORedis from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setFailureLog } from '../../src/core/guard.js';
import { closeClientListLookups, ioredisConnectionProbe } from '../../src/redis/confirm.js';
import { parseReply, RespConnection, RespReplyError } from '../../src/redis/resp-connection.js';
import { startOwnRedis, type OwnRedis } from '../support/node-redis.js';
import { REDIS_URL } from '../support/redis.js';

const logged: string[] = [];
beforeAll(() => setFailureLog((line) => logged.push(line)));
afterAll(() => setFailureLog((line) => process.stderr.write(`${line}\n`)));

const { hostname: HOST, port: PORT } = new URL(REDIS_URL);
const endpoint = (port: number, more: object = {}) => ({ host: HOST, port, clientName: 'leakwatch', timeoutMs: 2000, ...more });

describe('parseReply(buffer, offset)', () => {
  it('reads simple strings, errors, integers, bulk strings, nulls and arrays, and says when a reply is not all there', () => {
    const text = '+OK\r\n-ERR no\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:1\r\n';
    const buffer = Buffer.from(text);
    const replies = [];
    for (let at = 0, parsed = parseReply(buffer, 0); parsed !== null; parsed = parseReply(buffer, at)) {
      replies.push(parsed.reply);
      at = parsed.next;
    }
    expect(replies).toEqual(['OK', new RespReplyError('ERR no'), 42, 'hello', null, ['a', 1]]);
    expect(parseReply(Buffer.from('$5\r\nhel'), 0)).toBeNull();
    expect(parseReply(Buffer.from('*2\r\n:1\r\n'), 0)).toBeNull();
  });
});

describe('RespConnection', () => {
  it('reads CLIENT LIST on a connection of its own, named leakwatch', async () => {
    const connection = new RespConnection(endpoint(Number(PORT || 6379)));
    try {
      const list = String(await connection.command('CLIENT', 'LIST'));
      expect(list).toMatch(/ name=leakwatch /);
      expect(await connection.command('PING')).toBe('PONG'); // the same connection, again
    } finally {
      connection.close();
    }
  });

  describe('when the server does not answer', () => {
    it('fails the command after its timeout, and when nothing listens, at once', async () => {
      const silent = net.createServer(() => {});
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const { port } = silent.address() as net.AddressInfo;
      const connection = new RespConnection({ ...endpoint(port), host: '127.0.0.1', timeoutMs: 100 });
      await expect(connection.command('CLIENT', 'LIST')).rejects.toThrow(`no answer from Redis at 127.0.0.1:${port} in 100 ms`);
      silent.close();
      const nobody = new RespConnection({ ...endpoint(port), host: '127.0.0.1' });
      await expect(nobody.command('CLIENT', 'LIST')).rejects.toThrow(/ECONNREFUSED/);
    });
  });
});

const hasRedisServer = spawnSync('redis-server', ['--version']).error === undefined;

describe.skipIf(!hasRedisServer)('ioredisConnectionProbe › on a server that requires a user and password (an own redis-server) [skipped without redis-server on PATH]', () => {
  let server: OwnRedis;
  let port: number;
  beforeAll(async () => {
    // Up once it answers PING, which without a login is NOAUTH.
    server = await startOwnRedis(['--user', 'default', 'off', '--user', 'alice', 'on', '>s3cret-pw', '~*', '&*', '+@all']);
    port = server.port;
  }, 20_000);
  afterAll(() => server?.stop());

  it('logs in as the app’s client does and finds its connection', async () => {
    const app = new IORedis({ host: '127.0.0.1', port, username: 'alice', password: 's3cret-pw' });
    try {
      await app.ping();
      const id = Number(await app.client('ID'));
      expect(await ioredisConnectionProbe.confirm!(app)).toMatchObject({ clientId: id, state: 'idle' });
    } finally {
      closeClientListLookups();
      app.disconnect();
    }
  });

  it('resolves null when its login is refused, and logs no password', async () => {
    const app = new IORedis({ host: '127.0.0.1', port, username: 'alice', password: 's3cret-pw' });
    try {
      await app.ping();
      (app.options as { password?: string }).password = 'wrong-pw';
      expect(await ioredisConnectionProbe.confirm!(app)).toBeNull();
      const lines = logged.filter((line) => line.includes('CLIENT LIST'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/NOAUTH|WRONGPASS/);
      expect(logged.join('\n')).not.toMatch(/wrong-pw|s3cret-pw/);
    } finally {
      closeClientListLookups();
      app.disconnect();
    }
  });
});
