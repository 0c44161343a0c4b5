import type { ResponseRecord } from '../core/records.js';

/** Marks a node:http response (or anything tracked through it) with its record. */
export const kResponse = Symbol.for('leakwatch.response.v1');

/** The response record of a node:http response (or anything tracked through it), if any. */
export function responseOf(res: object): ResponseRecord | undefined {
  return (res as { [kResponse]?: ResponseRecord })[kResponse];
}
