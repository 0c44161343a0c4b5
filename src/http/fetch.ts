import { logFailure } from '../core/guard.js';
import type { ResponseProbe, ResponseRecord } from '../core/records.js';
import { FETCH_HANDLER } from '../core/marks.js';
import { ensureRuntime, getRuntime, responseContext } from '../core/runtime.js';
import { stripQuery } from './node-http.js';

/**
 * Fetch-style handlers, `(Request) => Response` (Hono's `app.fetch`, and `app.request()` in tests).
 *
 * A response closes when its body has been read to the end (finished) or cancelled (aborted); a
 * body that is neither is open. The body handed back is a thin stream over the app's body that
 * passes `cancel()` through to it, and reads run in the response's async context.
 */

interface FetchTarget {
  method: string;
  url: string;
  bytes: number;
}

const fetchResponseProbe: ResponseProbe = {
  progress: (target) => (target as FetchTarget).bytes,
  method: (target) => (target as FetchTarget).method,
  path(target) {
    const url = (target as FetchTarget).url;
    try {
      return new URL(url).pathname;
    } catch {
      return stripQuery(url);
    }
  },
  route: () => null,
  endOverrides: () => [],
};


export type FetchHandler = (request: Request, ...rest: never[]) => Response | Promise<Response>;

function close(response: ResponseRecord, outcome: 'finished' | 'aborted'): void {
  try {
    getRuntime()?.ledger.closeResponse(response, outcome);
  } catch (error) {
    logFailure('fetch response close', error);
  }
}

function followBody(response: ResponseRecord, target: FetchTarget, result: unknown): unknown {
  if (!(result instanceof Response) || result.body === null) {
    close(response, 'finished');
    return result;
  }
  let reader: ReadableStreamDefaultReader<Uint8Array>;
  try {
    reader = result.body.getReader();
  } catch (error) {
    logFailure('fetch body', error); // a locked or used body: leave it to the app
    close(response, 'finished');
    return result;
  }
  const body = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        return responseContext.run(response, () =>
          reader.read().then(
            ({ done, value }) => {
              if (done) {
                controller.close();
                close(response, 'finished');
                return;
              }
              target.bytes += value?.byteLength ?? 1;
              controller.enqueue(value);
            },
            (error: unknown) => {
              close(response, 'aborted');
              controller.error(error);
            },
          ),
        );
      },
      cancel(reason) {
        close(response, 'aborted');
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: result.status, statusText: result.statusText, headers: result.headers });
}

/**
 * Wraps a fetch-style handler so each call is followed as a response:
 * `app.fetch = wrapFetchHandler(app.fetch)`. Wrapping twice returns the first wrapper.
 */
export function wrapFetchHandler<F extends FetchHandler>(fetch: F): F {
  if ((fetch as F & { [FETCH_HANDLER]?: boolean })[FETCH_HANDLER]) return fetch;
  ensureRuntime();
  const wrapped = function (this: unknown, request: Request, ...rest: never[]) {
    let response: ResponseRecord;
    let target: FetchTarget;
    try {
      const runtime = getRuntime();
      if (runtime === undefined) return fetch.call(this, request, ...rest);
      target = { method: request.method, url: request.url, bytes: 0 };
      response = runtime.ledger.openResponse(target, fetchResponseProbe);
    } catch (error) {
      logFailure('wrapFetchHandler', error);
      return fetch.call(this, request, ...rest);
    }
    let result: Response | Promise<Response>;
    try {
      result = responseContext.run(response, () => fetch.call(this, request, ...rest));
    } catch (error) {
      close(response, 'finished');
      throw error;
    }
    if (result instanceof Promise || typeof (result as { then?: unknown })?.then === 'function') {
      return (result as Promise<Response>).then(
        (value) => followBody(response, target, value),
        (error: unknown) => {
          close(response, 'finished');
          throw error;
        },
      );
    }
    return followBody(response, target, result);
  };
  Object.defineProperty(wrapped, FETCH_HANDLER, { value: true });
  return wrapped as unknown as F;
}
