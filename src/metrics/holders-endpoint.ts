import type { IncomingMessage, ServerResponse } from 'node:http';
import { logFailure } from '../core/guard.js';
import { getRuntime } from '../core/runtime.js';
import { holdersOf, holdersText } from '../report/holders.js';

/**
 * `GET /leakwatch/holders` on the metrics server: the holders snapshot as JSON, or as the
 * plain-text table when the client asks for `text/plain` (and not JSON) or for `?format=text`, the
 * one query parameter it takes. Like the metrics, it is not counted as one of the app's responses.
 */

export const HOLDERS_PATH = '/leakwatch/holders';

type HoldersFormat = 'json' | 'text';

/** JSON unless the Accept header ranks text/plain above application/json. */
export function negotiateHolders(accept: string | undefined): HoldersFormat {
  if (accept === undefined || accept === '') return 'json';
  let json = 0;
  let text = 0;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.trim().toLowerCase().split(';');
    let q = 1;
    for (const param of params) {
      const [key, value] = param.trim().split('=');
      if (key === 'q') q = Number(value);
    }
    if (!(q > 0)) continue;
    const mediaType = type.trim();
    if (mediaType === 'application/json') json = Math.max(json, q);
    else if (mediaType === 'text/plain') text = Math.max(text, q);
  }
  return text > json ? 'text' : 'json';
}

function reply(res: ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(head ? undefined : body);
}

/** Answers one request for the holders; `query` is what follows `?` in its URL. */
export function answerHolders(req: IncomingMessage, res: ServerResponse, query: string): void {
  const head = req.method === 'HEAD';
  if (req.method !== 'GET' && !head) {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
    res.end('Method not allowed: the holders answer GET and HEAD.\n');
    return;
  }
  const params = new URLSearchParams(query);
  const unknown = [...params.keys()].filter((key) => key !== 'format');
  const asked = params.get('format');
  if (unknown.length > 0 || (asked !== null && asked !== 'json' && asked !== 'text')) {
    reply(res, 400, 'text/plain; charset=utf-8', `${HOLDERS_PATH} takes one query parameter, format=json or format=text.\n`, head);
    return;
  }
  try {
    const runtime = getRuntime();
    if (runtime === undefined) {
      reply(res, 503, 'text/plain; charset=utf-8', 'leakwatch is not started in this process.\n', head);
      return;
    }
    const snapshot = holdersOf(runtime);
    const format = (asked as HoldersFormat | null) ?? negotiateHolders(req.headers.accept);
    if (format === 'text') reply(res, 200, 'text/plain; charset=utf-8', holdersText(snapshot).join('\n') + '\n', head);
    else reply(res, 200, 'application/json; charset=utf-8', JSON.stringify(snapshot, null, 2) + '\n', head);
  } catch (error) {
    logFailure('answering the holders', error);
    if (!res.headersSent) reply(res, 500, 'text/plain; charset=utf-8', 'leakwatch could not read the holders.\n', head);
    else res.end();
  }
}
