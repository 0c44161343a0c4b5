import diagnostics_channel from 'node:diagnostics_channel';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { logFailure } from '../core/guard.js';
import type { ResponseProbe, ResponseRecord } from '../core/records.js';
import { ensureRuntime, getRuntime, responseContext } from '../core/runtime.js';
import { endOverridesOf } from './end-attribution.js';
import { kResponse, responseOf } from './response-of.js';

/**
 * Follows every node:http server response from its start to its close.
 *
 * Servers are found through the `http.server.request.start` diagnostics channel, without patching
 * `http`; the subscriber enters the response's async context for the rest of the request's
 * synchronous dispatch, so everything the handler starts is charged to it. `instrumentServer()`
 * and `wrapHandler()` do the same explicitly with `AsyncLocalStorage.run`.
 */

const HTTP_INSTALLED = Symbol.for('leakwatch.http.v1');
const kServerEmit = Symbol('leakwatch.serverEmit');
const kUntracked = Symbol.for('leakwatch.untrackedServer.v1');

type Tracked = ServerResponse & { [kResponse]?: ResponseRecord };

export { responseOf };

export function stripQuery(url: string): string {
  const q = url.indexOf('?');
  const h = url.indexOf('#');
  const cut = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return cut < 0 ? url : url.slice(0, cut);
}

export const nodeResponseProbe: ResponseProbe = {
  progress(target) {
    const res = target as ServerResponse & { outputSize?: number };
    const socket = res.socket;
    return (socket === null ? 0 : socket.bytesWritten ?? 0) + (res.outputSize ?? 0);
  },
  method(target) {
    return (target as ServerResponse).req?.method ?? 'UNKNOWN';
  },
  path(target) {
    const req = (target as ServerResponse).req as (IncomingMessage & { originalUrl?: string }) | undefined;
    return stripQuery(req?.originalUrl ?? req?.url ?? '');
  },
  route() {
    return null; // framework captures set ResponseRecord.route directly
  },
  endOverrides(target) {
    return endOverridesOf(target);
  },
};

function onResponseClose(this: Tracked): void {
  try {
    const response = this[kResponse];
    if (response === undefined) return;
    getRuntime()?.ledger.closeResponse(response, this.writableFinished ? 'finished' : 'aborted');
    // A report needs the replacements only while the response is open; a record kept longer (a
    // leak, an owner of held connections) must not keep them, nor the response they close over.
    response.endLayers = null;
  } catch (error) {
    logFailure('response close', error);
  }
}

/** Starts following `res`; returns its record (the existing one if it is followed already). */
export function trackResponse(res: ServerResponse): ResponseRecord | undefined {
  const tracked = res as Tracked;
  const existing = tracked[kResponse];
  if (existing !== undefined) return existing;
  if (res.closed) return undefined;
  const response = ensureRuntime().ledger.openResponse(res, nodeResponseProbe);
  tracked[kResponse] = response;
  res.on('close', onResponseClose);
  return response;
}

/** Leaves a server's responses out of the ledger (leakwatch's own metrics server). */
export function untrackServer(server: Server): void {
  (server as Server & { [kUntracked]?: true })[kUntracked] = true;
}

function onRequestStart(message: unknown): void {
  try {
    const { server, response } = message as { server?: Server & { [kUntracked]?: true }; response: ServerResponse };
    if (server?.[kUntracked] === true) return;
    const tracked = trackResponse(response);
    if (tracked !== undefined) responseContext.enterWith(tracked);
  } catch (error) {
    logFailure('http.server.request.start', error);
  }
}

/** Follows every node:http and https server in the process; idempotent. */
export function instrumentHttp(): () => void {
  const holder = globalThis as unknown as Record<symbol, (() => void) | undefined>;
  const existing = holder[HTTP_INSTALLED];
  if (existing !== undefined) return existing;
  diagnostics_channel.subscribe('http.server.request.start', onRequestStart);
  const undo = () => {
    if (holder[HTTP_INSTALLED] !== undo) return;
    delete holder[HTTP_INSTALLED];
    diagnostics_channel.unsubscribe('http.server.request.start', onRequestStart);
  };
  holder[HTTP_INSTALLED] = undo;
  return undo;
}

type RequestListener = (req: IncomingMessage, res: ServerResponse, ...rest: unknown[]) => unknown;

/** Runs `handler(req, res)` inside the response's async context; leakwatch failures never reach it. */
export function wrapHandler<H extends RequestListener>(handler: H): H {
  const wrapped = function (this: unknown, req: IncomingMessage, res: ServerResponse, ...rest: unknown[]) {
    let response: ResponseRecord | undefined;
    try {
      response = trackResponse(res);
    } catch (error) {
      logFailure('wrapHandler', error);
    }
    if (response === undefined) return handler.call(this, req, res, ...rest);
    return responseContext.run(response, () => handler.call(this, req, res, ...rest));
  };
  return wrapped as H;
}

/** Follows the responses of one server, running its 'request' listeners in the response's context. */
export function instrumentServer(server: Server): () => void {
  const target = server as Server & { [kServerEmit]?: Server['emit'] };
  const emitBefore = target[kServerEmit];
  if (emitBefore !== undefined) return () => restoreEmit(target);
  const original = server.emit as (this: Server, event: string | symbol, ...args: unknown[]) => boolean;
  target[kServerEmit] = server.emit;
  server.emit = function (this: Server, event: string | symbol, ...args: unknown[]) {
    if (event !== 'request') return original.call(this, event, ...args);
    let response: ResponseRecord | undefined;
    try {
      response = trackResponse(args[1] as ServerResponse);
    } catch (error) {
      logFailure('instrumentServer', error);
    }
    if (response === undefined) return original.call(this, event, ...args);
    return responseContext.run(response, () => original.call(this, event, ...args));
  } as Server['emit'];
  return () => restoreEmit(target);
}

function restoreEmit(server: Server & { [kServerEmit]?: Server['emit'] }): void {
  const original = server[kServerEmit];
  if (original === undefined) return;
  delete server[kServerEmit];
  if (original === (Object.getPrototypeOf(server) as Server).emit) delete (server as { emit?: unknown }).emit;
  else server.emit = original;
}
