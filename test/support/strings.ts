import { ConnectionRecord } from '../../src/core/records.js';
import { formatStack } from '../../src/core/stack.js';

/** Every string reachable from leakwatch's records, leaving out the live app objects they point at. */
export function stringsOf(root: unknown): string[] {
  const found: string[] = [];
  const seen = new Set<unknown>();
  const visit = (value: unknown): void => {
    if (typeof value === 'string') found.push(value);
    if (value === null || typeof value !== 'object' || seen.has(value)) return;
    seen.add(value);
    if (value instanceof ConnectionRecord) found.push(formatStack(value.stack) ?? '', value.id);
    if (value instanceof Set || Array.isArray(value)) for (const item of value) visit(item);
    for (const [key, item] of Object.entries(value)) {
      if (key === 'target' || key === 'probe' || key === 'stack') continue; // the app's own objects; the stack is formatted above
      found.push(key);
      visit(item);
    }
  };
  visit(root);
  return found;
}
