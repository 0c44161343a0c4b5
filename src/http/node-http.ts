import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { logFailure } from '../core/guard.js';
import { RESPONSE, UNTRACKED_SERVER } from '../core/marks.js';
import { install, subscribe, wrapMethod, type Fn, type Layer, type Undo } from '../core/patch.js';
import type { ResponseProbe, ResponseRecord } from '../core/records.js';
import { ensureRuntime, getRuntime, responseContext } from '../core/runtime.js';
import { endOverridesOf, keepEndAttribution, keepEndLayersOffRecord } from './end-attribution.js';
import { responseOf } from './response-of.js';
import { nextRouteOf } from './routes.js';

/**
 * Follows every node:http server response from its start to its close.
 *
 * Servers are found through the `http.server.request.start` diagnostics channel; the subscriber
 * enters the response's async context for the rest of the request's synchronous dispatch, so
 * everything the handler starts is charged to it. `instrumentServer()` and `wrapHandler()` do the
 * same explicitly with `AsyncLocalStorage.run`.
 */

type MarkedResponse = ServerResponse & { [RESPONSE]?: ResponseRecord };

export { responseOf };

export function stripQuery(url: string): string {
  const q = url.indexOf('?');
  const h = url.indexOf('#');
  const cut = q < 0 ? h : h < 0 ? q : Math.min(q, h);
  return cut < 0 ? url : url.slice(0, cut);
}

/**
 * What Node's `socket.bytesWritten` says. That getter copies the socket's write buffer to count
 * it; when nothing is buffered or in flight (a write counts in `writableLength` until it completes,
 * one waiting for the connection too), it is exactly the bytes handed to the system so far, read
 * here without the copy: the case of a response starting on a keep-alive socket.
 */
export function socketBytesWritten(socket: Socket): number {
  const dispatched = (socket as Socket & { _bytesDispatched?: unknown })._bytesDispatched;
  if (typeof dispatched === 'number' && socket.writableLength === 0) return dispatched;
  return socket.bytesWritten ?? 0;
}

/** A response's progress: the bytes written on `socket` (its own, once it has it) and those it buffered before. */
function progressOn(socket: Socket | null, res: ServerResponse & { outputSize?: number }): number {
  return (socket === null ? 0 : socketBytesWritten(socket)) + (res.outputSize ?? 0);
}

export const nodeResponseProbe: ResponseProbe = {
  progress(target) {
    const res = target as ServerResponse;
    return progressOn(res.socket, res);
  },
  method(target) {
    return (target as ServerResponse).req?.method ?? 'UNKNOWN';
  },
  path(target) {
    const req = (target as ServerResponse).req as (IncomingMessage & { originalUrl?: string }) | undefined;
    return stripQuery(req?.originalUrl ?? req?.url ?? '');
  },
  route(target) {
    // Other frameworks set ResponseRecord.routeTemplate as they route; Next's is read from its request.
    return nextRouteOf((target as ServerResponse).req);
  },
  endOverrides(target) {
    return endOverridesOf(target);
  },
};

function onResponseClose(this: MarkedResponse): void {
  try {
    const response = this[RESPONSE];
    if (response === undefined) return;
    // The record lets go of the response as it closes: a route only the response knows is kept.
    if (response.routeTemplate === null && response.routeSource === null) response.routeTemplate = nodeResponseProbe.route(this);
    getRuntime()?.ledger.closeResponse(response, this.writableFinished ? 'finished' : 'aborted');
    keepEndLayersOffRecord(this, response);
  } catch (error) {
    logFailure('response close', error);
  }
}

/**
 * A response that starts while its keep-alive socket still carries the previous response (the next
 * request came in before that one's 'finish') gets the socket later; the bytes already on it are
 * not this response's progress, so its mark is taken again then.
 */
function onSocketAssigned(this: MarkedResponse): void {
  try {
    const response = this[RESPONSE];
    if (response !== undefined && response.closedAt === 0) response.progressMark = nodeResponseProbe.progress(this);
  } catch (error) {
    logFailure('response socket', error);
  }
}

type ConnectionSocket = Socket & { _httpMessage?: unknown };

/**
 * Starts following `res`; returns its record (the existing one if it is followed already).
 * `connection` is the socket its request came in on, where the caller knows it.
 */
export function trackResponse(res: ServerResponse, connection?: ConnectionSocket): ResponseRecord | undefined {
  const tracked = res as MarkedResponse;
  const existing = tracked[RESPONSE];
  if (existing !== undefined) return existing;
  if (res.closed) return undefined;
  const runtime = getRuntime();
  if (runtime === undefined) return undefined;
  const response = runtime.ledger.openResponse(res, nodeResponseProbe);
  tracked[RESPONSE] = response;
  res.on('close', onResponseClose);
  if (res.socket === null) {
    // Node announces a request just before it gives the response its socket, at once when no other
    // response is on that socket (`_httpMessage`, as Node decides): nothing is written on it in
    // between, so the mark is taken now, without a 'socket' listener on every response.
    if (connection !== undefined && !connection._httpMessage) response.progressMark = progressOn(connection, res);
    else res.once('socket', onSocketAssigned);
  }
  return response;
}

/** Leaves a server's responses out of the ledger (leakwatch's own metrics server). */
export function untrackServer(server: Server): void {
  (server as Server & { [UNTRACKED_SERVER]?: true })[UNTRACKED_SERVER] = true;
}

function onRequestStart(message: unknown): void {
  const { server, response, socket } = message as { server?: Server & { [UNTRACKED_SERVER]?: true }; response: ServerResponse; socket?: ConnectionSocket };
  if (server?.[UNTRACKED_SERVER] === true) return;
  keepEndAttribution();
  const tracked = trackResponse(response, socket);
  if (tracked !== undefined) responseContext.enterWith(tracked);
}

/**
 * Follows every node:http and https server in the process. Shared by every caller; undone when
 * the last one lets go.
 */
export function instrumentHttp(): Undo {
  return install(globalThis, 'http.server.request.start', () => subscribe('http.server.request.start', 'following an http response', onRequestStart));
}

export type RequestListener = (req: IncomingMessage, res: ServerResponse, ...rest: unknown[]) => unknown;

/** Runs `handler(req, res)` inside the response's async context; leakwatch failures never reach it. */
export function wrapHandler<H extends RequestListener>(handler: H): H {
  ensureRuntime();
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
export function instrumentServer(server: Server): Undo {
  ensureRuntime();
  return install(server, 'instrumentServer', () => {
    const undo = wrapMethod(server, 'emit', (layer: Layer) =>
      function emit(this: Server, event: string | symbol, ...args: unknown[]) {
        if (event !== 'request' || !layer.active) return layer.original.call(this, event, ...args);
        let response: ResponseRecord | undefined;
        try {
          response = trackResponse(args[1] as ServerResponse);
        } catch (error) {
          logFailure('instrumentServer', error);
        }
        if (response === undefined) return layer.original.call(this, event, ...args);
        return responseContext.run(response, () => layer.original.call(this, event, ...args));
      } as Fn,
    );
    return undo ?? (() => {});
  });
}
