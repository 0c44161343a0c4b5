import { RESPONSE } from '../core/marks.js';
import type { ResponseRecord } from '../core/records.js';

/** The response record of a node:http response (or anything followed through it), if any. */
export function responseOf(res: object): ResponseRecord | undefined {
  return (res as { [RESPONSE]?: ResponseRecord })[RESPONSE];
}
