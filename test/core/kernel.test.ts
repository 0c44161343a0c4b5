import diagnostics_channel from 'node:diagnostics_channel';
import http, { IncomingMessage, OutgoingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import express from 'express';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { setFailureLog } from '../../src/core/guard.js';
import { layerOf, type Undo } from '../../src/core/patch.js';
import { instrumentEndAttribution } from '../../src/http/end-attribution.js';
import { instrumentServer, start } from '../../src/index.js';
import { instrumentExpressRoutes, instrumentFastifyRoutes, instrumentHttp, instrumentIoredis, instrumentKoaRoutes } from '../../src/index.js';
import { instrumentClientClass } from '../../src/pg/client.js';
import { closeActivityReaders } from '../../src/pg/confirm.js';
import { instrumentPoolClass } from '../../src/pg/pool.js';
import { getRuntime, resetRuntime } from '../support/internals.js';
import { close, listen, request, waitUntil } from '../support/http.js';
import { IOREDIS_MODULES, REDIS_URL } from '../support/redis.js';
import { pgUrl } from '../pg/support.js';

/**
 * What the kernel promises, checked over every instrumentation leakwatch installs: installing
 * twice is harmless, a wrapper another tool installed on top survives undo, a hook that throws
 * never reaches the app, start() twice and one stop() leaves the other caller tracking, and the
 * last stop() restores every original, by identity.
 */

const require = createRequire(__filename);
const PgPool = require('pg-pool') as { prototype: Record<string, unknown> };
const KoaContext = require('koa/lib/context.js') as object;
const [[, Redis]] = IOREDIS_MODULES;

type Patched = { name: string; install: () => Undo; target: () => object; methods: string[] };

const methodPatches: Patched[] = [
  { name: 'pg Client', install: () => instrumentClientClass(pg.Client), target: () => pg.Client.prototype, methods: ['connect', 'query', 'end'] },
  { name: 'pg-pool Pool', install: () => instrumentPoolClass(pg.Pool), target: () => PgPool.prototype, methods: ['connect', 'query', 'newClient'] },
  { name: 'ioredis', install: () => instrumentIoredis(Redis), target: () => Redis.prototype, methods: ['parseOptions', 'setStatus', 'sendCommand', 'disconnect'] },
];

const accessorPatches = [
  { name: 'Express routes', install: instrumentExpressRoutes, target: () => IncomingMessage.prototype, property: 'route' },
  { name: 'Koa routes', install: () => instrumentKoaRoutes(KoaContext), target: () => KoaContext, property: '_matchedRoute' },
];

const channelPatches = [
  { name: 'node:http responses', install: instrumentHttp, channel: 'http.server.request.start' },
  { name: 'Fastify routes', install: instrumentFastifyRoutes, channel: 'tracing:fastify.request.handler:start' },
];

/** Every property leakwatch may touch, as its own descriptor now; and the channels' subscriber state. */
function everything(): Record<string, unknown> {
  const seen: Record<string, unknown> = {};
  for (const p of methodPatches) for (const m of p.methods) seen[`${p.name}.${m}`] = Object.getOwnPropertyDescriptor(p.target(), m);
  for (const p of accessorPatches) seen[p.name] = Object.getOwnPropertyDescriptor(p.target(), p.property);
  for (const p of channelPatches) seen[p.name] = diagnostics_channel.channel(p.channel).hasSubscribers;
  seen['ServerResponse.prototype.end'] = Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'end');
  seen['ServerResponse.prototype’s prototype'] = Object.getPrototypeOf(ServerResponse.prototype);
  seen['Module.prototype.loaded'] = Object.getOwnPropertyDescriptor(require('node:module').prototype, 'loaded');
  return seen;
}

const bare = everything();

beforeAll(() => {
  resetRuntime();
  start({ responseThreshold: 300, connectionThreshold: 300 }).stop(); // a runtime, nothing installed
});
afterAll(() => closeActivityReaders());
afterEach(() => expect(everything()).toEqual(bare)); // every test leaves the process as it found it

describe.each(methodPatches)('wrapped methods: $name', ({ install, target, methods }) => {
  it('installs one layer however often it is asked; only the last release restores each original, by identity', () => {
    const originals = methods.map((m) => (target() as Record<string, unknown>)[m]);
    const first = install();
    const second = install();
    for (const [i, m] of methods.entries()) {
      const fn = (target() as Record<string, unknown>)[m] as { __original?: unknown };
      expect(layerOf(fn)).toBeDefined();
      expect(fn.__original).toBe(originals[i]); // one layer: ours is directly over the original
    }
    first();
    first(); // releasing twice is harmless
    expect(methods.map((m) => layerOf((target() as Record<string, unknown>)[m]))).not.toContain(undefined);
    second();
    expect(methods.map((m) => (target() as Record<string, unknown>)[m])).toEqual(originals);
  });

  it('keeps a wrapper another tool put on top when undone; ours then only passes through', () => {
    const proto = target() as Record<string, (...args: unknown[]) => unknown>;
    const name = methods[0];
    const original = proto[name];
    const undo = install();
    const ours = proto[name];
    const theirs = function (this: unknown, ...args: unknown[]) {
      return ours.apply(this, args);
    };
    proto[name] = theirs;
    undo();
    expect(proto[name]).toBe(theirs);
    expect(layerOf(ours)?.active).toBe(false);
    expect(layerOf(ours)?.original).toBe(original);
    proto[name] = original; // the other tool leaves
  });

  it('composes with shimmer-style re-wrapping: an unwrap aimed at our layer takes off the wrapper beneath it', () => {
    // OpenTelemetry patches pg's Client in two passes and unwraps its first wrapper before the
    // second; leakwatch patching in between must not make it wrap twice.
    const proto = target() as Record<string, unknown>;
    const name = methods[0];
    const original = proto[name] as (...args: unknown[]) => unknown;
    const shimmerWrap = (fn: (...args: unknown[]) => unknown) => {
      const wrapped = function (this: unknown, ...args: unknown[]) {
        return fn.apply(this, args);
      };
      Object.assign(wrapped, { __wrapped: true, __original: fn, __unwrap: () => (proto[name] === wrapped ? (proto[name] = fn) : undefined) });
      return wrapped;
    };
    proto[name] = shimmerWrap(original); // the agent's first pass
    const undo = install(); // leakwatch in between
    const ours = proto[name] as { __unwrap(): void; __wrapped: boolean };
    expect(ours.__wrapped).toBe(true); // what isWrapped() tests
    ours.__unwrap(); // the agent's second pass unwraps "its" wrapper…
    proto[name] = shimmerWrap(proto[name] as (...args: unknown[]) => unknown); // …and wraps again
    const chain: unknown[] = [];
    for (let f = proto[name] as { __original?: unknown } | undefined; typeof f === 'function'; f = (f as { __original?: unknown }).__original as typeof f) chain.push(f);
    expect(chain).toHaveLength(3); // agent → leakwatch → original: the agent's layer once
    expect(chain[2]).toBe(original);
    undo();
    proto[name] = original;
  });
});

describe.each(accessorPatches)('accessors: $name', ({ install, target, property }) => {
  it('installs once however often it is asked; only the last release puts the property back as it was', () => {
    const before = Object.getOwnPropertyDescriptor(target(), property);
    const first = install();
    const accessor = Object.getOwnPropertyDescriptor(target(), property);
    expect(accessor?.get).toBeTypeOf('function');
    const second = install();
    expect(Object.getOwnPropertyDescriptor(target(), property)).toEqual(accessor);
    first();
    expect(Object.getOwnPropertyDescriptor(target(), property)).toEqual(accessor);
    second();
    expect(Object.getOwnPropertyDescriptor(target(), property)).toEqual(before);
  });
});

describe.each(channelPatches)('diagnostics channels: $name', ({ install, channel }) => {
  it('subscribes once however often it is asked; only the last release unsubscribes', () => {
    const first = install();
    const second = install();
    expect(diagnostics_channel.channel(channel).hasSubscribers).toBe(true);
    first();
    expect(diagnostics_channel.channel(channel).hasSubscribers).toBe(true);
    second();
    expect(diagnostics_channel.channel(channel).hasSubscribers).toBe(false);
  });
});

describe('res.end attribution', () => {
  it('installs once however often it is asked, leaves ServerResponse.prototype’s own properties as Node has them, and the last release restores its prototype', () => {
    const first = instrumentEndAttribution();
    const layer = Object.getPrototypeOf(ServerResponse.prototype) as object;
    expect(layer).not.toBe(OutgoingMessage.prototype);
    expect(Object.getPrototypeOf(layer)).toBe(OutgoingMessage.prototype);
    expect(Object.getOwnPropertyDescriptor(layer, 'end')?.get).toBeTypeOf('function');
    expect(Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'end')).toBeUndefined(); // as without leakwatch
    const second = instrumentEndAttribution();
    expect(Object.getPrototypeOf(ServerResponse.prototype)).toBe(layer);
    first();
    expect(Object.getPrototypeOf(ServerResponse.prototype)).toBe(layer);
    second();
    expect(Object.getPrototypeOf(ServerResponse.prototype)).toBe(OutgoingMessage.prototype);
    expect(ServerResponse.prototype.end).toBe(OutgoingMessage.prototype.end);
  });

  it('lets a shimmer that wraps an accessor’s getter in place (dd-trace’s) wrap the method: its hook runs per end() call, not per read', () => {
    const undo = instrumentEndAttribution();
    const proto = ServerResponse.prototype as unknown as Record<string, unknown>;
    // datadog-shimmer's wrap(): an own accessor's getter is what it wraps; with no own property it wraps the value read.
    const descriptor = Object.getOwnPropertyDescriptor(proto, 'end') ?? { value: proto.end, writable: true, configurable: true, enumerable: false };
    const original = (descriptor.value ?? descriptor.get) as (...args: unknown[]) => unknown;
    let hooked = 0;
    const wrapped = function (this: unknown, ...args: unknown[]) {
      hooked++;
      return original.apply(this, args);
    };
    Object.defineProperty(proto, 'end', { ...descriptor, value: wrapped });
    const res = new ServerResponse(new IncomingMessage(null as never));
    void res.end; // a read is no call
    expect(hooked).toBe(0);
    expect(typeof res.end).toBe('function');
    delete proto.end;
    undo();
  });
});

describe('instrumentServer(server)', () => {
  it('patches the server once for every caller and gives it back its own emit after the last', () => {
    const server = http.createServer();
    const first = instrumentServer(server);
    const second = instrumentServer(server);
    expect(layerOf(server.emit)).toBeDefined();
    first();
    expect(Object.hasOwn(server, 'emit')).toBe(true);
    second();
    expect(Object.hasOwn(server, 'emit')).toBe(false);
  });
});

/** An Express app on pg and Redis: a pool checkout released, a Redis command, and one route whose res.end is swallowed. */
function app(pool: pg.Pool, redis: InstanceType<typeof Redis>) {
  const server = express();
  server.get('/work/:id', async (req, res) => {
    const client = await pool.connect();
    try {
      await client.query('SELECT 1');
      await redis.incr('leakwatch-test:kernel');
      res.send(`done ${req.params.id}`);
    } finally {
      client.release();
    }
  });
  server.get('/swallowed', (_req, res) => {
    res.end = (() => res) as never; // never calls through
    res.end('lost');
  });
  return http.createServer(server);
}

describe('start() over every instrumentation', () => {
  let pool: pg.Pool;
  let redis: InstanceType<typeof Redis>;
  beforeAll(() => {
    pool = new pg.Pool({ connectionString: pgUrl(), max: 2 });
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await pool.end();
    redis.disconnect();
  });

  it('shares one installation: start() twice and one stop() leaves the other caller tracking', async () => {
    const a = start();
    const b = start();
    a.stop();
    const ledger = getRuntime()!.ledger;
    const before = ledger.totals.responses;
    const server = app(pool, redis);
    const port = await listen(server);
    expect(await request(port, '/work/1')).toEqual({ status: 200, body: 'done 1' });
    await waitUntil(() => ledger.totals.responses === before + 1, 2000, 'the response to be followed');
    await close(server);
    b.stop();
  });

  it('never lets a hook that throws reach the app, and logs it', async () => {
    const handle = start();
    const ledger = getRuntime()!.ledger as unknown as Record<string, unknown>;
    const saved: Record<string, unknown> = {};
    const logs: string[] = [];
    setFailureLog((line) => logs.push(line));
    for (const method of ['openResponse', 'closeResponse', 'acquireConnection', 'releaseConnection', 'connectionBusy', 'connectionIdle', 'beginOperation', 'endOperation']) {
      saved[method] = ledger[method];
      ledger[method] = () => {
        throw new Error(`hook failure in ${method}`);
      };
    }
    const server = app(pool, redis);
    try {
      const port = await listen(server);
      expect(await request(port, '/work/2')).toEqual({ status: 200, body: 'done 2' });
      expect(await request(port, '/work/3')).toEqual({ status: 200, body: 'done 3' });
    } finally {
      Object.assign(ledger, saved);
      for (const method of Object.keys(saved)) delete ledger[method]; // back to the prototype's
      setFailureLog(getRuntime()!.config.log);
      await close(server);
      handle.stop();
    }
    expect(logs.some((line) => /hook failure in openResponse/.test(line))).toBe(true);
    expect(logs.some((line) => /hook failure in (acquireConnection|connectionBusy)/.test(line))).toBe(true);
  });

  it('runs a prototype-level patch of res.end made after it for every response, and still names the replacement that swallowed end', async () => {
    const handle = start({ responseThreshold: 300 });
    const original = ServerResponse.prototype.end;
    let calls = 0;
    // What an older agent does: patch the prototype by assignment, wrapping what it reads.
    ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
      calls++;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    const server = app(pool, redis);
    try {
      const port = await listen(server);
      for (let i = 0; i < 3; i++) expect(await request(port, `/work/${i}`)).toEqual({ status: 200, body: `done ${i}` });
      expect(calls).toBe(3);
      const ledger = getRuntime()!.ledger;
      const since = ledger.now();
      void request(port, '/swallowed').catch(() => {});
      await waitUntil(() => ledger.leaks.some((l) => 'outcome' in l && l.startedAt >= since), 2000, 'the swallowed end to leak');
      const leak = ledger.leaks.find((l) => 'outcome' in l && l.startedAt >= since)!;
      expect(leak.detail?.endOverrides).toEqual([{ at: expect.stringMatching(/kernel\.test\.ts:\d+:\d+$/), called: true, calledThrough: false }]);
      expect(calls).toBe(3); // the swallowed end never reached the prototype's
    } finally {
      await close(server);
      handle.stop();
    }
    // Undone with the other tool's patch in place: the prototype keeps it, as the `end` it was.
    expect(calls).toBe(3);
    const kept = Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'end');
    expect(kept?.value).toBeTypeOf('function');
    expect(kept?.value).not.toBe(OutgoingMessage.prototype.end);
    ServerResponse.prototype.end = original; // the other tool leaves, as it came
    delete (ServerResponse.prototype as { end?: unknown }).end;
  });

  it('takes back res.end after another tool redefined it with defineProperty, running that tool’s function', async () => {
    const handle = start();
    const original = OutgoingMessage.prototype.end;
    let calls = 0;
    const theirs = function (this: ServerResponse, ...args: unknown[]) {
      calls++;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
    Object.defineProperty(ServerResponse.prototype, 'end', { value: theirs, writable: true, configurable: true, enumerable: false });
    const server = app(pool, redis);
    try {
      const port = await listen(server);
      expect(await request(port, '/work/7')).toEqual({ status: 200, body: 'done 7' });
      expect(calls).toBe(1);
      expect(Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'end')).toBeUndefined(); // taken in below
      expect(ServerResponse.prototype.end).toBe(theirs); // what the prototype's end is, read from it
    } finally {
      await close(server);
      handle.stop();
    }
    expect(Object.getOwnPropertyDescriptor(ServerResponse.prototype, 'end')?.value).toBe(theirs);
    delete (ServerResponse.prototype as { end?: unknown }).end;
  });

  it('restores every original, by identity, when the last caller stops', async () => {
    const handles = [start(), start(), start()];
    expect(everything()).not.toEqual(bare);
    for (const handle of handles) handle.stop();
    expect(everything()).toEqual(bare);
  });
});
