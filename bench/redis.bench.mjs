// The CPU cost of Redis instrumentation per command, for ioredis 5 and 6 and node-redis (redis 6, 5
// and 4), against the real server: GET/SET one at a time and pipelined, bare against instrumented,
// in alternating rounds; then the hooks alone, with the network out. Also the figures behind two
// design choices: what subscribing to ioredis 6's tracing channel costs by itself, and joining
// CLIENT LIST by socket address (paid per confirmation) against reading each connection's CLIENT
// ID (paid per connection).
import diagnostics_channel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import IORedis5 from 'ioredis';
import IORedis6 from 'ioredis6';
import * as nodeRedis6 from 'redis';
import * as nodeRedis5 from 'redis5';
import * as nodeRedis4 from 'redis4';
import { instrumentIoredis, instrumentNodeRedis } from '../dist/index.js';
import { ensureRuntime, resetRuntime, responseContext } from '../dist/core/runtime.js';
import { nodeRedisWindows } from '../dist/node-redis/state.js';
import { findByAddress, parseClientList } from '../dist/redis/index.js';
import { median, spread, summary } from './lib/stats.mjs';

export const title = 'Redis (ioredis and node-redis)';

const redisUrl = () => process.env.LEAKWATCH_TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const require = createRequire(import.meta.url);
const MODULES = {
  [`ioredis ${require('ioredis/package.json').version}`]: { module: IORedis5, id: 'ioredis' },
  [`ioredis ${require('ioredis6/package.json').version}`]: { module: IORedis6, id: 'ioredis6' },
};
const probe = { progress: () => 0, method: () => 'GET', path: () => '/bench', route: () => null, endOverrides: () => [] };
const KEY = 'leakwatch-bench:key';

const cpuUs = (before) => {
  const used = process.cpuUsage(before);
  return used.user + used.system;
};

async function oneAtATime(client, n) {
  for (let i = 0; i < n; i += 2) {
    await client.set(KEY, 'value');
    await client.get(KEY);
  }
}

async function pipelined(client, n, depth = 100) {
  for (let i = 0; i < n; i += depth) {
    const pipeline = client.pipeline();
    for (let j = 0; j < depth; j += 2) pipeline.set(KEY, 'value').get(KEY);
    await pipeline.exec();
  }
}

/** Each workload with the commands per batch: pipelined batches are larger, so a GC pause spreads over more commands. */
const WORKLOADS = {
  'GET/SET one at a time': { workload: oneAtATime, scale: 1 },
  'GET/SET pipelined by 100': { workload: pipelined, scale: 10 },
};

/**
 * A second, never instrumented copy of an installed ioredis: its files are loaded again, so bare
 * and instrumented clients live side by side and measurements can alternate batch by batch.
 */
function bareCopy(id) {
  const folder = path.dirname(require.resolve(`${id}/package.json`)) + path.sep;
  const cached = Object.keys(require.cache).filter((file) => file.startsWith(folder));
  const saved = cached.map((file) => [file, require.cache[file]]);
  for (const file of cached) delete require.cache[file];
  try {
    return require(id);
  } finally {
    for (const [file, module] of saved) require.cache[file] = module;
  }
}

const NODE_REDIS = {
  [`redis ${require('redis/package.json').version}`]: { module: nodeRedis6, id: 'redis' },
  [`redis ${require('redis5/package.json').version}`]: { module: nodeRedis5, id: 'redis5' },
  [`redis ${require('redis4/package.json').version}`]: { module: nodeRedis4, id: 'redis4' },
};

/**
 * A second, never instrumented copy of an installed node-redis: the package and the @redis/*
 * packages it uses are loaded again (the first copy's modules are put back in the cache after).
 */
function bareNodeRedis(id) {
  const ours = (file) => /[\\/]node_modules[\\/](?:redis\d*|@redis)[\\/]/.test(file);
  const saved = Object.keys(require.cache)
    .filter(ours)
    .map((file) => [file, require.cache[file]]);
  for (const [file] of saved) delete require.cache[file];
  try {
    const copy = require(id);
    const clientFolder = path.resolve(path.dirname(createRequire(require.resolve(`${id}/package.json`)).resolve('@redis/client')), '..');
    const Queue = require(path.join(clientFolder, 'dist/lib/client/commands-queue.js')).default;
    return { module: copy, Queue };
  } finally {
    for (const file of Object.keys(require.cache).filter(ours)) delete require.cache[file];
    for (const [file, module] of saved) require.cache[file] = module;
  }
}

const MODES = ['bare', 'instrumented, shared client', 'instrumented, client owned by the request'];

/** A fresh runtime with `instrument()` applied, and a response opened by hand for the commands to come from. */
function instrumentedRuntime(instrument) {
  resetRuntime();
  ensureRuntime({ responseThreshold: '30s', connectionThreshold: '10s', log: () => {} });
  const undo = instrument();
  const ledger = ensureRuntime().ledger;
  const response = ledger.openResponse({}, probe);
  return {
    response,
    stop() {
      ledger.closeResponse(response, 'finished');
      undo();
    },
  };
}

/**
 * CPU per command of each mode: `batch(mode, n)` sends n commands, first `warmup` of them, then
 * `commands` in each of `rounds` rounds, the modes in an order that rotates every round so drift in
 * the machine's speed does not favour one. Every batch is sent from inside `response`'s async
 * context, as a handler would. µs per command, or ns with `unit` 1000.
 */
async function alternate(response, batch, { rounds, commands, warmup, unit = 1 }) {
  const figures = Object.fromEntries(MODES.map((mode) => [mode, []]));
  for (const mode of MODES) await responseContext.run(response, () => batch(mode, warmup));
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < MODES.length; k++) {
      const mode = MODES[(round + k) % MODES.length];
      const before = process.cpuUsage();
      await responseContext.run(response, () => batch(mode, commands));
      figures[mode].push((cpuUs(before) / commands) * unit);
    }
  }
  return figures;
}

/** A mode's table cells: its figure, and what it adds to bare in the same round. */
const cells = (figures, mode, digits = 2) => `${spread(figures[mode], digits)} | ${mode === 'bare' ? '—' : spread(figures[mode].map((x, i) => x - figures.bare[i]), digits)}`;

/**
 * CPU µs per command in each mode, batches alternating: a bare client (from a bare copy of
 * ioredis), an instrumented client made at start-up (each command is also an operation of the
 * request that sends it), and an instrumented client made by the request (it owns the connection).
 * Every batch is sent from inside a request's async context, as a handler would.
 */
async function measureModule(Redis, Bare, workload, { rounds, commands, warmup, log, label }) {
  const runtime = instrumentedRuntime(() => instrumentIoredis(Redis));
  const clients = {
    bare: new Bare(redisUrl()),
    'instrumented, shared client': new Redis(redisUrl()),
    'instrumented, client owned by the request': responseContext.run(runtime.response, () => new Redis(redisUrl())),
  };
  const figures = await alternate(runtime.response, (mode, n) => workload(clients[mode], n), { rounds, commands, warmup });
  log?.(`  ${label}: ${MODES.map((mode) => `${mode} ${median(figures[mode]).toFixed(2)}`).join(', ')} µs CPU/command`);
  await Promise.all(Object.values(clients).map((client) => client.quit()));
  runtime.stop();
  instrumentIoredis(Redis)();
  return figures;
}

async function commandSection({ log, rounds, commands, warmup }) {
  const rows = [];
  for (const [moduleName, { module: Redis, id }] of Object.entries(MODULES)) {
    const Bare = bareCopy(id);
    for (const [workloadName, { workload, scale }] of Object.entries(WORKLOADS)) {
      const figures = await measureModule(Redis, Bare, workload, { rounds, commands: commands * scale, warmup, log, label: `${moduleName} ${workloadName}` });
      for (const mode of MODES) rows.push(`| ${moduleName} | ${workloadName} | ${mode} | ${cells(figures, mode)} |`);
    }
  }
  return [
    `In-process CPU (user+system, \`process.cpuUsage()\`) per command against the real server, sent from inside a request's async context. Bare clients come from a second, uninstrumented copy of the same ioredis, so the modes alternate batch by batch: ${rounds} rounds of ${commands} commands (${commands * WORKLOADS['GET/SET pipelined by 100'].scale} pipelined) per mode, modes in rotating order, after ${warmup} warm-up commands each. Median (25th–75th percentile). Added is the median over rounds of (mode − bare) in the same round. The Redis server's own CPU is not counted.`,
    '',
    '| ioredis | workload | mode | CPU µs/command | added µs/command |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ];
}

/** What a no-op subscriber to `ioredis:command` costs ioredis 6 per command, before it does anything. */
async function channelSection({ log, rounds, commands, warmup }) {
  instrumentIoredis(IORedis6)();
  const channel = diagnostics_channel.tracingChannel('ioredis:command');
  const noop = { start() {}, end() {}, asyncStart() {}, asyncEnd() {}, error() {} };
  const figures = { bare: [], subscribed: [] };
  const client = new IORedis6(redisUrl());
  await oneAtATime(client, warmup);
  for (let round = 0; round < rounds; round++) {
    for (const mode of round % 2 ? ['subscribed', 'bare'] : ['bare', 'subscribed']) {
      if (mode === 'subscribed') channel.subscribe(noop);
      const before = process.cpuUsage();
      await oneAtATime(client, commands);
      figures[mode].push(cpuUs(before) / commands);
      if (mode === 'subscribed') channel.unsubscribe(noop);
    }
  }
  await client.quit();
  log?.(`  ioredis 6 tracing channel: bare ${median(figures.bare).toFixed(2)}, subscribed ${median(figures.subscribed).toFixed(2)} µs CPU/command`);
  const added = figures.subscribed.map((us, i) => us - figures.bare[i]);
  return [
    `ioredis 6 publishes \`ioredis:command\`; its messages carry the server address, database, command name and (sanitised) arguments, but not the client, so they cannot tell which connection is busy, subscribed or ended. A subscriber that does nothing still makes ioredis build that message, stringify the arguments and wrap each command's promise. GET/SET one at a time on one client, ${rounds} rounds of ${commands} commands, the subscriber on and off in alternation. Median (25th–75th percentile).`,
    '',
    '| ioredis 6 | CPU µs/command | added µs/command |',
    '| --- | --- | --- |',
    `| no subscriber | ${spread(figures.bare)} | — |`,
    `| a no-op subscriber on ioredis:command | ${spread(figures.subscribed)} | ${spread(added)} |`,
  ];
}

/**
 * A stand-in for ioredis's Redis class that answers every command from memory, so that the hook
 * path (wrappers, ledger updates) is measured without the network's noise. Commands are ioredis's
 * own Command objects.
 */
class MemoryRedis {
  constructor() {
    this.status = 'wait';
    this.parseOptions({ host: '127.0.0.1', port: 6379, db: 0 });
    this.sent = [];
    this.setStatus('connecting');
    this.setStatus('ready');
  }
  parseOptions(options) {
    this.options = options;
  }
  setStatus(status) {
    this.status = status;
  }
  sendCommand(command) {
    this.sent.push(command);
    return command.promise;
  }
  disconnect() {
    this.setStatus('end');
  }
  /** Replies to everything sent, in order, as the DataHandler would. */
  replyAll() {
    for (const command of this.sent) command.resolve(Buffer.from('OK'));
    this.sent.length = 0;
  }
}

async function hookSection({ log, rounds, commands }) {
  const { Command } = IORedis5;
  const batch = async (client, n) => {
    for (let i = 0; i < n; i += 100) {
      const promises = [];
      for (let j = 0; j < 100; j++) promises.push(client.sendCommand(new Command(j % 2 ? 'get' : 'set', ['leakwatch-bench:key'])));
      client.replyAll();
      await Promise.all(promises);
    }
  };
  class Bare extends MemoryRedis {}
  class Instrumented extends MemoryRedis {}
  for (const name of ['parseOptions', 'setStatus', 'sendCommand', 'disconnect']) Instrumented.prototype[name] = MemoryRedis.prototype[name];
  const runtime = instrumentedRuntime(() => instrumentIoredis(Instrumented));
  const clients = { bare: new Bare(), 'instrumented, shared client': new Instrumented(), 'instrumented, client owned by the request': responseContext.run(runtime.response, () => new Instrumented()) };
  const figures = await alternate(runtime.response, (mode, n) => batch(clients[mode], n), { rounds, commands, warmup: commands, unit: 1000 });
  runtime.stop();
  log?.(`  hook path: ${MODES.map((mode) => `${mode} ${median(figures[mode]).toFixed(0)}`).join(', ')} ns CPU/command`);
  return [
    `The same hooks on a stand-in Redis class that answers from memory (ioredis's own \`Command\` objects, replies in batches of 100), so the network's noise is out: what leakwatch adds to each command. ${rounds} rounds of ${commands} commands per mode, rotating order. Median (25th–75th percentile), nanoseconds.`,
    '',
    '| mode | CPU ns/command | added ns/command |',
    '| --- | --- | --- |',
    ...MODES.map((mode) => `| ${mode} | ${cells(figures, mode, 0)} |`),
  ];
}

/** node-redis pipelines the commands sent in one tick: 100 at a time, as a handler that awaits Promise.all would. */
async function nodeRedisPipelined(client, n, depth = 100) {
  for (let i = 0; i < n; i += depth) {
    const replies = [];
    for (let j = 0; j < depth; j += 2) replies.push(client.set(KEY, 'value'), client.get(KEY));
    await Promise.all(replies);
  }
}

const NODE_REDIS_WORKLOADS = {
  'GET/SET one at a time': { workload: oneAtATime, scale: 1 },
  'GET/SET 100 in flight (pipelined)': { workload: nodeRedisPipelined, scale: 10 },
};

async function nodeRedisCommandSection({ log, rounds, commands, warmup }) {
  const rows = [];
  for (const [moduleName, { module: redis, id }] of Object.entries(NODE_REDIS)) {
    const bare = bareNodeRedis(id).module;
    for (const [workloadName, { workload, scale }] of Object.entries(NODE_REDIS_WORKLOADS)) {
      const runtime = instrumentedRuntime(() => instrumentNodeRedis(redis));
      const clients = {
        bare: bare.createClient({ url: redisUrl() }),
        'instrumented, shared client': redis.createClient({ url: redisUrl() }),
        'instrumented, client owned by the request': responseContext.run(runtime.response, () => redis.createClient({ url: redisUrl() })),
      };
      await Promise.all(Object.values(clients).map((client) => client.connect()));
      const figures = await alternate(runtime.response, (mode, n) => workload(clients[mode], n), { rounds, commands: commands * scale, warmup });
      log?.(`  ${moduleName} ${workloadName}: ${MODES.map((mode) => `${mode} ${median(figures[mode]).toFixed(2)}`).join(', ')} µs CPU/command`);
      await Promise.all(Object.values(clients).map((client) => client.quit()));
      runtime.stop();
      for (const mode of MODES) rows.push(`| ${moduleName} | ${workloadName} | ${mode} | ${cells(figures, mode)} |`);
    }
  }
  return [
    `The same measure for node-redis: bare clients come from a second, uninstrumented copy of the same redis package (and its @redis/client). node-redis writes the commands sent in one tick together, so the pipelined workload sends 100 at once and awaits them all. ${rounds} rounds of ${commands} commands (${commands * 10} pipelined) per mode, rotating order, after ${warmup} warm-up commands each. Median (25th–75th percentile).`,
    '',
    '| node-redis | workload | mode | CPU µs/command | added µs/command |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
  ];
}

/**
 * The hooks alone: commands go through a real command queue of each node-redis (leakwatch wraps the
 * queue's addCommand), are moved to "waiting for a reply" as a socket write would, and are answered
 * through the queue's own RESP decoder, 100 at a time, so the network's noise is out. Each queue
 * belongs to a connected client, bare (an uninstrumented copy) or instrumented; their sockets are
 * left alone.
 */
async function nodeRedisHookSection({ log, rounds, commands }) {
  const rows = [];
  const OK = Buffer.from('+OK\r\n'.repeat(100));
  for (const [moduleName, { module: redis, id }] of Object.entries(NODE_REDIS)) {
    const { Queue: BareQueue, module: bareModule } = bareNodeRedis(id);
    const v4 = id === 'redis4';
    const replyAll = (queue) => {
      if (v4) {
        while (queue.getCommandToSend() !== undefined);
        queue.onReplyChunk(OK);
      } else {
        for (const _ of queue.commandsToWrite());
        queue.decoder.write(OK);
      }
    };
    const batch = async (queue, n) => {
      for (let i = 0; i < n; i += 100) {
        const replies = [];
        for (let j = 0; j < 100; j++) replies.push(queue.addCommand(j % 2 ? ['GET', KEY] : ['SET', KEY, 'value']));
        replyAll(queue);
        await Promise.all(replies);
      }
    };
    const runtime = instrumentedRuntime(() => instrumentNodeRedis(redis));
    const shared = redis.createClient({ url: redisUrl() });
    const owned = responseContext.run(runtime.response, () => redis.createClient({ url: redisUrl() }));
    await Promise.all([shared.connect(), owned.connect()]);
    const queueOf = (client) => {
      const capture = nodeRedisWindows.queueCapture;
      capture.armed = true;
      void client.isPubSubActive;
      capture.armed = false;
      return capture.queue;
    };
    // The bare client's queue, found the way leakwatch finds one: its getter, briefly, notes who asks.
    const bareClient = bareModule.createClient({ url: redisUrl() });
    await bareClient.connect();
    const getter = Object.getOwnPropertyDescriptor(BareQueue.prototype, 'isPubSubActive');
    let bareQueue = null;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the getter is there to learn which queue it is called on
    Object.defineProperty(BareQueue.prototype, 'isPubSubActive', { ...getter, get() { bareQueue = this; return getter.get.call(this); } });
    void bareClient.isPubSubActive;
    Object.defineProperty(BareQueue.prototype, 'isPubSubActive', getter);
    const queues = {
      bare: bareQueue,
      'instrumented, shared client': queueOf(shared),
      'instrumented, client owned by the request': queueOf(owned),
    };
    const figures = await alternate(runtime.response, (mode, n) => batch(queues[mode], n), { rounds, commands, warmup: commands, unit: 1000 });
    await Promise.all([shared.quit(), owned.quit(), bareClient.quit()]);
    runtime.stop();
    log?.(`  ${moduleName} hook path: ${MODES.map((mode) => `${mode} ${median(figures[mode]).toFixed(0)}`).join(', ')} ns CPU/command`);
    for (const mode of MODES) rows.push(`| ${moduleName} | ${mode} | ${cells(figures, mode, 0)} |`);
  }
  return [
    `node-redis's hooks alone: commands go through a real command queue of each version (leakwatch wraps its \`addCommand\`), are taken off it as a socket write would take them, and are answered through the queue's own RESP decoder, 100 at a time, so the network is out. ${rounds} rounds of ${commands} commands per mode, rotating order. Median (25th–75th percentile), nanoseconds. Compare with ioredis's stand-in above: there the bare figure includes no parsing of replies.`,
    '',
    '| node-redis | mode | CPU ns/command | added ns/command |',
    '| --- | --- | --- | --- |',
    ...rows,
  ];
}

/** Joining CLIENT LIST by address (per confirmation) against CLIENT ID read at connect (per connection). */
async function joinSection({ log, rounds }) {
  instrumentIoredis(IORedis5)();
  const client = new IORedis5(redisUrl());
  await client.ping();
  const idCost = [];
  for (let round = 0; round < rounds; round++) {
    const n = 2000;
    const before = process.cpuUsage();
    for (let i = 0; i < n; i++) await client.client('ID');
    idCost.push(cpuUs(before) / n);
  }
  log?.(`  CLIENT ID round trip: ${median(idCost).toFixed(2)} µs CPU`);
  const rows = [`| read each connection's CLIENT ID at connect | per connection made (and per reconnect) | ${summary(idCost, 2)} |`];
  const extra = [];
  for (const total of [50, 500]) {
    while (extra.length < total) extra.push(new IORedis5(redisUrl()));
    await Promise.all(extra.map((c) => c.ping()));
    const lookupCost = [];
    const { localAddress, localPort } = client.stream;
    for (let round = 0; round < rounds; round++) {
      const n = 20;
      const before = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        const entry = findByAddress(parseClientList(String(await client.call('CLIENT', 'LIST'))), localAddress, localPort);
        if (entry === null) throw new Error('the bench client is missing from CLIENT LIST');
      }
      lookupCost.push(cpuUs(before) / n);
    }
    log?.(`  CLIENT LIST join with ${total}+ clients: ${median(lookupCost).toFixed(1)} µs CPU`);
    rows.push(`| join CLIENT LIST by socket address, ${total}+ clients on the server | per confirmation batch (suspected leaks only) | ${summary(lookupCost, 1)} |`);
  }
  await Promise.all([client, ...extra].map((c) => c.quit()));
  return [
    `Client-process CPU of each way to find a connection in \`CLIENT LIST\`. The address join costs nothing per connection (the socket's address is read only when a leak is confirmed) and leaks found together share one \`CLIENT LIST\`; the id join would add a round trip to every connection the app makes. ${rounds} rounds; median (min–max).`,
    '',
    '| join | paid | CPU µs |',
    '| --- | --- | --- |',
    ...rows,
  ];
}

export async function run({ log, rounds = 30, commands = 1_000, warmup = 2_000 } = {}) {
  const perCommand = await commandSection({ log, rounds, commands, warmup });
  const nodeRedisPerCommand = await nodeRedisCommandSection({ log, rounds, commands, warmup });
  const hook = await hookSection({ log, rounds, commands: 20_000 });
  const nodeRedisHook = await nodeRedisHookSection({ log, rounds, commands: 20_000 });
  const channel = await channelSection({ log, rounds, commands, warmup });
  const join = await joinSection({ log, rounds: 5 });
  return [
    `### ${title}`,
    '',
    '#### Per command',
    '',
    ...perCommand,
    '',
    ...nodeRedisPerCommand,
    '',
    '#### Per command, the hooks alone',
    '',
    ...hook,
    '',
    ...nodeRedisHook,
    '',
    '#### ioredis 6 tracing channels',
    '',
    ...channel,
    '',
    '#### CLIENT LIST join',
    '',
    ...join,
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  console.log(await run({ log: (line) => process.stderr.write(line + '\n') }));
}
