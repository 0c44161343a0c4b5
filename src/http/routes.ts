import { IncomingMessage } from 'node:http';
import { logFailure } from '../core/guard.js';
import { defineAccessor, install, subscribe, type Undo } from '../core/patch.js';
import type { ResponseRecord } from '../core/records.js';
import { currentResponse } from '../core/runtime.js';
import { responseOf } from './response-of.js';

/**
 * Route templates per framework, captured when the framework routes the request (not when the
 * response closes, by which time Express has restored `baseUrl`). Each capture costs nothing for
 * apps that do not use that framework.
 */

const kExpressRoute = Symbol('leakwatch.expressRoute');

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
export function instrumentExpressRoutes(): Undo {
  return install(IncomingMessage.prototype, 'express routes', () =>
    // The route object is kept on the response's record (a property added to Express's request
    // would cost more than the rest of the capture); on the request only when it is not followed.
    defineAccessor(IncomingMessage.prototype, 'route', {
      get(this: RequestLike) {
        const response = responseOfRequest(this);
        return response !== undefined && response.expressRoute !== undefined ? response.expressRoute : this[kExpressRoute];
      },
      set(this: RequestLike, route: unknown) {
        const response = responseOfRequest(this);
        if (response === undefined) {
          this[kExpressRoute] = route;
          return;
        }
        // The router sets the route it matched, then Route#dispatch sets the same one again.
        if (response.expressRoute === route) return;
        response.expressRoute = route;
        try {
          const path = routePathText((route as { path?: unknown } | null)?.path);
          if (path !== null) response.routeTemplate = (this.baseUrl ?? '') + path;
        } catch (error) {
          logFailure('express route capture', error);
        }
      },
    }),
  );
}

interface FastifyHandlerStart {
  reply?: { raw?: object };
  route?: { url?: string };
}

function onFastifyHandlerStart(message: unknown): void {
  const { reply, route } = message as FastifyHandlerStart;
  const response = reply?.raw === undefined ? undefined : responseOf(reply.raw);
  if (response !== undefined && typeof route?.url === 'string') response.routeTemplate = route.url;
}

/** Fastify 5 publishes `tracing:fastify.request.handler:start` with the route's URL template. */
export function instrumentFastifyRoutes(): Undo {
  const channel = 'tracing:fastify.request.handler:start';
  return install(globalThis, channel, () => subscribe(channel, 'fastify route capture', onFastifyHandlerStart));
}

/**
 * Next.js keeps what it knows of a request in an object under `Symbol.for('NextInternalRequestMeta')`
 * on the IncomingMessage, shared with its own request wrapper. Once it has matched the request it
 * puts the route's definition there (`match.definition.pathname`: `/api/leak/[id]`,
 * `/blog/[...slug]`, `/api/users/[id]` of the pages router), before any route code runs, in
 * `next start`, the standalone server.js and custom servers alike. leakwatch only reads it, when
 * a report or metric asks or as the response closes: nothing is installed, nothing of Next's
 * changes, and an app without Next pays one property read per response. Checked on Next.js
 * 15.5.29 and 16.4.6. A request Next answers with its error or not-found page has that page's
 * route (`/_error`, `/_not-found`).
 */
const NEXT_REQUEST_META = Symbol.for('NextInternalRequestMeta');

interface NextRequestMeta {
  match?: { definition?: { pathname?: unknown } };
}

/** The Next.js route of a request, or null when Next has not matched it (or it is not Next's). */
export function nextRouteOf(req: object | null | undefined): string | null {
  const meta = (req as { [NEXT_REQUEST_META]?: NextRequestMeta } | null | undefined)?.[NEXT_REQUEST_META];
  if (meta === undefined) return null;
  const pathname = meta.match?.definition?.pathname;
  return typeof pathname === 'string' ? pathname : null;
}

const kKoaMatched = Symbol('leakwatch.koaMatchedRoute');

/**
 * @koa/router sets `ctx._matchedRoute` to the matched layer's path (prefix included). Pass the
 * Koa app (its `context` is the prototype of every ctx) or Koa's context prototype itself.
 */
export function instrumentKoaRoutes(appOrContext: { context?: object } | object): Undo {
  const proto = ((appOrContext as { context?: object }).context ?? appOrContext) as Record<symbol, unknown>;
  return install(proto, 'koa routes', () =>
    defineAccessor(proto, '_matchedRoute', {
      get(this: Record<symbol, unknown>) {
        return this[kKoaMatched];
      },
      set(this: Record<symbol, unknown> & { res?: object }, path: unknown) {
        this[kKoaMatched] = path;
        try {
          const response = this.res === undefined ? undefined : responseOf(this.res);
          const text = routePathText(path);
          if (response !== undefined && text !== null) response.routeTemplate = text;
        } catch (error) {
          logFailure('koa route capture', error);
        }
      },
    }),
  );
}

export interface HonoContextLike {
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
        response.routeSource = () => {
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
