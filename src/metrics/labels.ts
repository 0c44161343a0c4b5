import { withoutCredentials } from '../core/credentials.js';
import type { ConnectionKind } from '../core/records.js';
import { DB_SYSTEMS, HTTP_METHODS, OTHER_METHOD, OVERFLOW_VALUE, UNMATCHED_ROUTE } from './names.js';

/**
 * Label values that stay bounded whatever the traffic: a method from a fixed list, a route template
 * (never a raw URL), and at most `max` distinct routes or pools per metric.
 */

const KNOWN_METHODS: ReadonlySet<string> = new Set(HTTP_METHODS);

/** The request method, or `_OTHER` for anything outside the fixed list (methods are case-sensitive). */
export function methodLabel(method: string | null | undefined): string {
  return method !== null && method !== undefined && KNOWN_METHODS.has(method) ? method : OTHER_METHOD;
}

export function dbSystemLabel(kind: ConnectionKind): string {
  return DB_SYSTEMS[kind] ?? kind;
}

/** Longest label value written; longer route templates or pool names are cut. */
export const MAX_LABEL_LENGTH = 128;

/** A pool name as a label: without credentials, should a connection string reach it. */
export function poolLabel(name: string): string {
  const clean = withoutCredentials(name);
  return clean.length > MAX_LABEL_LENGTH ? clean.slice(0, MAX_LABEL_LENGTH) : clean;
}

/**
 * Admits the first `max` distinct values of one label of one metric; every later value is written
 * as `_overflow`, so that an app with unbounded routes cannot blow up the series count. Admitted
 * values stay admitted for the life of the process (their counters must keep counting).
 */
export class LabelCap {
  private readonly admitted = new Set<string>();

  constructor(readonly max: number) {}

  value(raw: string): string {
    if (this.admitted.has(raw)) return raw;
    if (this.admitted.size >= this.max) return OVERFLOW_VALUE;
    this.admitted.add(raw);
    return raw;
  }

  get size(): number {
    return this.admitted.size;
  }
}

/** The `route` label: the template, `unmatched` when none is known, `_overflow` past the cap. */
export function routeLabel(cap: LabelCap, route: string | null): string {
  if (route === null || route === '') return UNMATCHED_ROUTE;
  return cap.value(route.length > MAX_LABEL_LENGTH ? route.slice(0, MAX_LABEL_LENGTH) : route);
}
