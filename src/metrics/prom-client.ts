import { createRequire } from 'node:module';
import path from 'node:path';

/** The prom-client module, loaded when metrics are first asked for (it is an optional peer dependency). */
export type PromClient = typeof import('prom-client');

/** A prom-client Registry of either content type. */
export type AnyRegistry = import('prom-client').Registry<import('prom-client').RegistryContentType>;

export class MissingPromClientError extends Error {
  override name = 'MissingPromClientError';
}

let loaded: PromClient | undefined;

/**
 * Loads the app's prom-client: from where leakwatch is installed, else from the app's directory
 * (leakwatch linked or installed globally). Throws a MissingPromClientError that says what to install.
 */
export function loadPromClient(): PromClient {
  if (loaded !== undefined) return loaded;
  const attempts = [require, createRequire(path.join(process.cwd(), 'noop.js'))];
  let lastError: unknown;
  for (const load of attempts) {
    try {
      const prom = load('prom-client') as PromClient;
      if (typeof prom.Registry?.OPENMETRICS_CONTENT_TYPE !== 'string') {
        throw new MissingPromClientError('leakwatch metrics need prom-client 15 or newer; this app has an older one: run `npm install prom-client@15`.');
      }
      loaded = prom;
      return prom;
    } catch (error) {
      if (error instanceof MissingPromClientError) throw error;
      lastError = error;
    }
  }
  throw new MissingPromClientError(
    'leakwatch metrics need prom-client, which this app does not have: run `npm install prom-client` (15 or newer) and start again.',
    { cause: lastError },
  );
}
