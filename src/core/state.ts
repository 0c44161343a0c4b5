/**
 * The one process-wide slot. Everything leakwatch shares across a process (the runtime, the
 * patches it installed, what each instrumentation knows of its library) is a part of it, kept
 * under a single registered Symbol on globalThis: two copies of leakwatch in one process (the app's
 * and a test runner's, or `src/` and `dist/`) then share one ledger and one set of patches instead
 * of splitting them.
 */
const SLOT = Symbol.for('leakwatch.process.v2');

type Parts = Map<string, unknown>;
const holder = globalThis as unknown as { [SLOT]?: Parts };
const parts: Parts = (holder[SLOT] ??= new Map());

/** The part named `key`, made by `init` the first time any copy of leakwatch asks for it. */
export function shared<T>(key: string, init: () => T): T {
  if (parts.has(key)) return parts.get(key) as T;
  const value = init();
  parts.set(key, value);
  return value;
}
