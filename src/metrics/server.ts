import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerPrimary, isClusterWorker } from './cluster.js';
import { untrackServer } from '../http/node-http.js';
import { metricsFor, metricsHandler, type MetricsHandlerOptions } from './handler.js';
import { answerHolders, HOLDERS_PATH } from './holders-endpoint.js';

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions extends MetricsHandlerOptions {
  /** Port to listen on; 0 picks a free one (read it from the result). */
  port: number;
  /** @default '127.0.0.1' */
  host?: string;
  /** @default '/metrics' */
  path?: string;
}

/** A running metrics server, or in a cluster worker the promise to answer the primary. */
export interface MetricsServer {
  /** Where it listens; null in a cluster worker, whose metrics the primary serves. */
  readonly address: { host: string; port: number } | null;
  /** `http://host:port/metrics`, or null in a cluster worker. */
  readonly url: string | null;
  close(): Promise<void>;
}

export class MetricsPortError extends Error {
  override name = 'MetricsPortError';
}

/**
 * Serves the metrics at `http://host:port/metrics`, and the holders snapshot (who holds every
 * pool connection now, and who waits) at `/leakwatch/holders`. The server never keeps the process
 * alive.
 *
 * In a Node cluster worker nothing is bound (workers would share the port, and each scrape would
 * reach one worker at random): the worker answers its primary instead, and the primary's server
 * serves every worker's metrics combined. Rejects with a MetricsPortError when the port is taken.
 */
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
  const metrics = metricsFor(options);
  if (isClusterWorker()) {
    const stop = answerPrimary(() => metrics.families());
    return { address: null, url: null, close: async () => stop() };
  }
  const host = options.host ?? '127.0.0.1';
  const path = options.path ?? '/metrics';
  const handle = metricsHandler({ metrics });
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    if (pathname === path) return handle(req, res);
    if (pathname === HOLDERS_PATH) return answerHolders(req, res, q < 0 ? '' : url.slice(q + 1));
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(`leakwatch serves its metrics at ${path} and the holders at ${HOLDERS_PATH}\n`);
  });
  untrackServer(server); // scrapes are not the app's responses
  // Scrapers keep their connection open between scrapes; neither it nor the server holds the app up.
  server.on('connection', (socket) => socket.unref());
  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      const taken = error.code === 'EADDRINUSE';
      reject(
        new MetricsPortError(
          taken
            ? `metrics port ${options.port} on ${host} is taken (another process serves it); this process's metrics are not served`
            : `could not serve metrics on ${host}:${options.port}: ${error.message}`,
          { cause: error },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.unref();
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    address: { host: address.address, port: address.port },
    url: `http://${shownHost}:${address.port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
