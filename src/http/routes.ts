import diagnostics_channel from 'node:diagnostics_channel';
import { IncomingMessage } from 'node:http';
import { logFailure } from '../core/guard.js';
import type { ResponseRecord } from '../core/records.js';
import { currentResponse } from '../core/runtime.js';
import { responseOf } from './response-of.js';

/**
 * Route templates per framework, captured when the framework routes the request (not when the
 * response closes, by which time Express has restored `baseUrl`). Each capture costs nothing for
 * apps that do not use that framework.
 */

const kExpressRoute = Symbol('leakwatch.expressRoute');
const EXPRESS_INSTALLED = Symbol.for('leakwatch.routes.express.v1');
const FASTIFY_INSTALLED = Symbol.for('leakwatch.routes.fastify.v1');
const KOA_INSTALLED = Symbol.for('leakwatch.routes.koa.v1');

type RequestLike = IncomingMessage & { baseUrl?: string; res?: object; [kExpressRoute]?: unknown };

function routePathText(path: unknown): string | null {
  if (typeof path === 'string') return path;
  if (Array.isArray(path)) return path.map(String).join('|');
  if (path instanceof RegExp) return String(path);
  return null;
}

/** The record of the response paired with `req` (Express sets `req.res`), if it is followed. */
function responseOfRequest(req: RequestLike): ResponseRecord | undefined {
  try {
    const res = req.res;
    return typeof res === 'object' && res !== null ? responseOf(res) : undefined;
  } catch (error) {
    logFailure('express route capture', error);
    return undefined;
  }
}

/**
 * Express 4 and 5 assign `req.route` when a route dispatches; an accessor on
 * IncomingMessage.prototype notes `baseUrl + route.path` at that moment.
 */
export function instrumentExpressRoutes(): () => void {
  const proto = IncomingMessage.prototype as unknown as Record<symbol, unknown>;
  const existing = proto[EXPRESS_INSTALLED] as (() => void) | undefined;
  if (existing !== undefined) return existing;
  const ownBefore = Object.getOwnPropertyDescriptor(IncomingMessage.prototype, 'route');

  // The route object is kept on the response's record (a property added to Express's request
  // would cost more than the rest of the capture); on the request only when it is not followed.
  Object.defineProperty(IncomingMessage.prototype, 'route', {
    configurable: true,
    enumerable: false,
    get(this: RequestLike) {
      const response = responseOfRequest(this);
      return response !== undefined && response.frameworkRoute !== undefined ? response.frameworkRoute : this[kExpressRoute];
    },
    set(this: RequestLike, route: unknown) {
      const response = responseOfRequest(this);
      if (response === undefined) {
        this[kExpressRoute] = route;
        return;
      }
      // The router sets the route it matched, then Route#dispatch sets the same one again.
      if (response.frameworkRoute === route) return;
      response.frameworkRoute = route;
      try {
        const path = routePathText((route as { path?: unknown } | null)?.path);
        if (path !== null) response.route = (this.baseUrl ?? '') + path;
      } catch (error) {
        logFailure('express route capture', error);
      }
    },
  });

  const undo = () => {
    if (proto[EXPRESS_INSTALLED] !== undo) return;
    delete proto[EXPRESS_INSTALLED];
    if (ownBefore) Object.defineProperty(IncomingMessage.prototype, 'route', ownBefore);
    else delete (IncomingMessage.prototype as { route?: unknown }).route;
  };
  Object.defineProperty(proto, EXPRESS_INSTALLED, { value: undo, configurable: true });
  return undo;
}

interface FastifyHandlerStart {
  reply?: { raw?: object };
  route?: { url?: string };
}

function onFastifyHandlerStart(message: unknown): void {
  try {
    const { reply, route } = message as FastifyHandlerStart;
    const response = reply?.raw === undefined ? undefined : responseOf(reply.raw);
    if (response !== undefined && typeof route?.url === 'string') response.route = route.url;
  } catch (error) {
    logFailure('fastify route capture', error);
  }
}

/** Fastify 5 publishes `tracing:fastify.request.handler:start` with the route's URL template. */
export function instrumentFastifyRoutes(): () => void {
  const holder = globalThis as unknown as Record<symbol, (() => void) | undefined>;
  const existing = holder[FASTIFY_INSTALLED];
  if (existing !== undefined) return existing;
  const channel = 'tracing:fastify.request.handler:start';
  diagnostics_channel.subscribe(channel, onFastifyHandlerStart);
  const undo = () => {
    if (holder[FASTIFY_INSTALLED] !== undo) return;
    delete holder[FASTIFY_INSTALLED];
    diagnostics_channel.unsubscribe(channel, onFastifyHandlerStart);
  };
  holder[FASTIFY_INSTALLED] = undo;
  return undo;
}

const kKoaMatched = Symbol('leakwatch.koaMatchedRoute');

/**
 * @koa/router sets `ctx._matchedRoute` to the matched layer's path (prefix included). Pass the
 * Koa app (its `context` is the prototype of every ctx) or Koa's context prototype itself.
 */
export function instrumentKoaRoutes(appOrContext: { context?: object } | object): () => void {
  const proto = ((appOrContext as { context?: object }).context ?? appOrContext) as Record<symbol, unknown>;
  const existing = proto[KOA_INSTALLED] as (() => void) | undefined;
  if (existing !== undefined) return existing;
  const ownBefore = Object.getOwnPropertyDescriptor(proto, '_matchedRoute');
  Object.defineProperty(proto, '_matchedRoute', {
    configurable: true,
    enumerable: false,
    get(this: Record<symbol, unknown>) {
      return this[kKoaMatched];
    },
    set(this: Record<symbol, unknown> & { res?: object }, path: unknown) {
      this[kKoaMatched] = path;
      try {
        const response = this.res === undefined ? undefined : responseOf(this.res);
        const text = routePathText(path);
        if (response !== undefined && text !== null) response.route = text;
      } catch (error) {
        logFailure('koa route capture', error);
      }
    },
  });
  const undo = () => {
    if (proto[KOA_INSTALLED] !== undo) return;
    delete proto[KOA_INSTALLED];
    if (ownBefore) Object.defineProperty(proto, '_matchedRoute', ownBefore);
    else delete (proto as { _matchedRoute?: unknown })._matchedRoute;
  };
  Object.defineProperty(proto, KOA_INSTALLED, { value: undo, configurable: true });
  return undo;
}

interface HonoContextLike {
  req: { matchedRoutes?: Array<{ path: string; method: string }> };
}

/**
 * Hono middleware that makes the matched route known: `app.use('*', honoRoutes())`. It reads the
 * last matched route registered for a method (middleware are registered for ALL), so it names
 * the handler route whichever handler is running when a leak is reported.
 */
export function honoRoutes(): (c: HonoContextLike, next: () => Promise<void>) => Promise<void> {
  return function leakwatchHonoRoutes(c, next) {
    try {
      const response = currentResponse();
      if (response !== undefined) {
        response.routeOf = () => {
          const routes = c.req.matchedRoutes;
          if (!Array.isArray(routes)) return null;
          for (let i = routes.length - 1; i >= 0; i--) if (routes[i].method !== 'ALL') return routes[i].path;
          return null;
        };
      }
    } catch (error) {
      logFailure('hono route capture', error);
    }
    return next();
  };
}
