// Reference mode for bench/instructions.mjs (`--modes=…,floor`): the least any tool pays that
// follows every response to its close and links each pg checkout and Redis command to the request
// that made it, as leakwatch's contract asks. No ledger, no deadlines, no protocol, no root cause,
// no error handling: per response, an AsyncLocalStorage store entered from the diagnostics channel
// leakwatch uses, one record (opened and closed with a clock read each) kept on the response, and a
// 'close' listener; per `pool.query()`, the request looked up and a record stamped at the checkout
// and at the release (pg-pool's own 'acquire' and 'release' events); per ioredis command, the
// request looked up and a record stamped as it is sent and as it settles. What leakwatch spends
// above this is its design's; what this spends above bare is the price of following at all.
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics_channel from 'node:diagnostics_channel';
import { createRequire } from 'node:module';

const context = new AsyncLocalStorage();
const RECORD = Symbol('floor.record');

function onClose() {
  this[RECORD].closedAt = Date.now();
}

diagnostics_channel.subscribe('http.server.request.start', (message) => {
  const res = message.response;
  const record = { res, openedAt: Date.now(), closedAt: 0, held: 0 };
  res[RECORD] = record;
  res.on('close', onClose);
  context.enterWith(record);
});

// The server's copies of pg-pool and ioredis (it lives beside this file): the CommonJS cache is
// shared, so patching them here patches what the server requires later.
const require = createRequire(import.meta.url);

// A checkout served from the pool's queue is charged to whatever request is current when it is
// served; a real tool must carry the requester to it (leakwatch's Checkout), which costs more.
const Pool = require('pg-pool');
const query = Pool.prototype.query;
const pools = new WeakSet();
function onAcquire(client) {
  const owner = context.getStore();
  client[RECORD] = { owner, acquiredAt: Date.now(), releasedAt: 0 };
  if (owner !== undefined) owner.held++;
}
function onRelease(_error, client) {
  const record = client[RECORD];
  if (record === undefined) return;
  record.releasedAt = Date.now();
  if (record.owner !== undefined) record.owner.held--;
}
Pool.prototype.query = function () {
  if (!pools.has(this)) {
    pools.add(this);
    this.on('acquire', onAcquire);
    this.on('release', onRelease);
  }
  return query.apply(this, arguments);
};

// The reply is seen through the command's own resolve/reject, as a tool must: a handler on
// `command.promise` would mark the app's promise handled and hide its unhandled rejections.
const Redis = require('ioredis');
const sendCommand = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function (command) {
  const record = { owner: context.getStore(), sentAt: Date.now(), doneAt: 0 };
  command[RECORD] = record;
  const { resolve, reject } = command;
  command.resolve = function (value) {
    record.doneAt = Date.now();
    return resolve.call(this, value);
  };
  command.reject = function (error) {
    record.doneAt = Date.now();
    return reject.call(this, error);
  };
  return sendCommand.apply(this, arguments);
};
