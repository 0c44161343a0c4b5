import type http from 'node:http';
import { afterAll, beforeAll } from 'vitest';
import type { ResponseRecord } from '../../src/core/records.js';
import { listen, recordResponsesByUrl } from './http.js';

/** What the fixture apps' createApp() returns: a server, its start-up connections, its own shutdown. */
export interface FixtureApp {
  server: http.Server;
  ready?: Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Serves the app `create()` makes, before the enclosing block's tests: on a free port, with the
 * response of each request recorded by URL, once its start-up connections are made. The app's own
 * close() runs after the block's tests.
 */
export function useFixtureApp<App extends FixtureApp>(create: () => App): { readonly app: App; readonly port: number; readonly responses: Map<string, ResponseRecord> } {
  let app: App | undefined;
  let port = 0;
  const responses = new Map<string, ResponseRecord>();
  beforeAll(async () => {
    app = create();
    recordResponsesByUrl(app.server, responses);
    port = await listen(app.server);
    await app.ready;
  });
  afterAll(() => app?.close());
  return {
    get app() {
      return app!;
    },
    get port() {
      return port;
    },
    responses,
  };
}
