import type { Fn } from './internal-types.js';

/**
 * The mark on every function leakwatch put in place of a pg method; its value is the original.
 * Registered, so two copies of leakwatch in one process (the app's and a test runner's) see each
 * other's patches and never wrap twice.
 */
export const PATCHED = Symbol.for('leakwatch.pg.patched.v1');

type Marked = Fn & { [PATCHED]?: Fn };

/** The object on `target`'s prototype chain that holds `name` itself, if any. */
export function holderOf(target: object, name: string): object | null {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.prototype.hasOwnProperty.call(o, name)) return o;
  }
  return null;
}

export function isPatched(fn: unknown): boolean {
  return typeof fn === 'function' && (fn as Marked)[PATCHED] !== undefined;
}

/** Passed to each wrapper: false once undone while other code had wrapped on top of ours. */
export interface PatchSwitch {
  enabled: boolean;
}

/**
 * Replaces `target[name]` with `wrap(original, on)`, marked with {@link PATCHED}. Returns an undo
 * that puts the original property back exactly (or removes the own property it added); null when
 * `target[name]` is missing or already patched. If other code wrapped the method after us, undo
 * cannot take our layer out without dropping theirs, so it sets `on.enabled = false` and the
 * wrapper must then pass straight through.
 */
export function patchMethod(target: object, name: string, wrap: (original: Fn, on: PatchSwitch) => Fn): (() => void) | null {
  const holder = target as Record<string, unknown>;
  const original = holder[name];
  if (typeof original !== 'function' || isPatched(original)) return null;
  const own = Object.getOwnPropertyDescriptor(target, name);
  const on: PatchSwitch = { enabled: true };
  const wrapper = wrap(original as Fn, on) as Marked;
  Object.defineProperty(wrapper, PATCHED, { value: original });
  Object.defineProperty(wrapper, 'name', { value: (original as Fn).name, configurable: true });
  Object.defineProperty(wrapper, 'length', { value: (original as Fn).length, configurable: true });
  Object.defineProperty(target, name, {
    value: wrapper,
    writable: own?.writable ?? true,
    enumerable: own?.enumerable ?? false,
    configurable: true,
  });
  return () => {
    if (!on.enabled) return;
    on.enabled = false;
    if (Object.getOwnPropertyDescriptor(target, name)?.value !== wrapper) return;
    if (own !== undefined) Object.defineProperty(target, name, own);
    else delete holder[name];
  };
}

/** Runs every undo in reverse order. */
export function undoAll(undos: Array<(() => void) | null>): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (let i = undos.length - 1; i >= 0; i--) undos[i]?.();
  };
}

const INSTRUMENTED = Symbol.for('leakwatch.pg.instrumented.v1');

type Holder = { [INSTRUMENTED]?: () => void };

/**
 * `instrument()` once per `target`: the first call keeps its undo on the target (under a
 * registered Symbol), later calls return that same undo, wherever they come from. The undo takes
 * the mark away again.
 */
export function instrumentOnce(target: object, instrument: () => Array<(() => void) | null>): () => void {
  const holder = target as Holder;
  const existing = holder[INSTRUMENTED];
  if (existing !== undefined) return existing;
  const undo = undoAll([
    ...instrument(),
    () => {
      if (holder[INSTRUMENTED] === undo) delete holder[INSTRUMENTED];
    },
  ]);
  Object.defineProperty(holder, INSTRUMENTED, { value: undo, configurable: true, enumerable: false, writable: true });
  return undo;
}
