import diagnostics_channel from 'node:diagnostics_channel';
import { logFailure } from './guard.js';
import { LAYER } from './marks.js';
import { shared } from './state.js';

/**
 * The patching kernel: every change leakwatch makes to code that is not its own goes through here
 * (a method wrapped, an accessor defined, a diagnostics channel subscribed, a module hooked), so
 * that each of them
 * - is installed once however many callers ask, and undone only when the last one lets go
 *   ({@link install});
 * - composes with other tools' wrappers: a wrapper of ours carries the marks shimmer,
 *   OpenTelemetry and most agents test for (`__wrapped`, `__original`, `__unwrap`), and undo
 *   restores the original only where nobody wrapped on top of us, else it turns our layer into a
 *   pass-through and keeps theirs;
 * - never throws into the host: hooks run guarded, failures are logged (guard.ts).
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- wrappers pass any arguments through
export type Fn = (...args: any[]) => any;
export type Undo = () => void;

/** One wrapper of ours in a chain of wrappers: what it calls through to, and whether it does its own work. */
export interface Layer<F extends Fn = Fn> {
  /** The function beneath this layer. It changes when a wrapper beneath ours is unwrapped. */
  original: F;
  /** False once undone while another tool's wrapper sits on top: the layer only passes through. */
  active: boolean;
}

type Marked = Fn & { [LAYER]?: Layer; __original?: unknown; __unwrap?: unknown; __wrapped?: unknown };

/** shimmer's and OpenTelemetry's `isWrapped`: a wrapper that says what it wraps and how to take it off. */
function isShimmerWrapper(fn: unknown): fn is Marked & { __original: Fn } {
  const f = fn as Marked;
  return typeof f === 'function' && f.__wrapped === true && typeof f.__original === 'function' && typeof f.__unwrap === 'function';
}

/** Our layer in the chain of wrappers that starts at `fn`, following the `__original` links other tools leave. */
export function layerOf(fn: unknown): Layer | undefined {
  let f = fn as Marked | undefined;
  for (let depth = 0; typeof f === 'function' && depth < 32; depth++) {
    const layer = f[LAYER];
    if (layer !== undefined) return layer;
    f = f.__original as Marked | undefined;
  }
  return undefined;
}

/**
 * An `__unwrap` called on our wrapper comes from a tool that takes the top of the property for its
 * own wrapper (OpenTelemetry unwraps whatever `isWrapped` says is wrapped before it wraps again).
 * What it means to take off is its wrapper, which is beneath ours: that one is skipped, ours stays.
 * With no such wrapper beneath, there is nothing of theirs to take off.
 */
function unwrapBeneath(layer: Layer): void {
  const beneath = layer.original;
  if (isShimmerWrapper(beneath)) layer.original = beneath.__original;
}

/** The object on `target`'s prototype chain that holds `name` itself, if any: where a method is patched. */
export function ownerOf(target: object, name: string): object | null {
  for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.prototype.hasOwnProperty.call(o, name)) return o;
  }
  return null;
}

function copyIdentity(wrapper: Fn, original: Fn): void {
  Object.defineProperty(wrapper, 'name', { value: original.name, configurable: true });
  Object.defineProperty(wrapper, 'length', { value: original.length, configurable: true });
}

/**
 * Replaces `target[name]` with `wrap(layer)`; the wrapper calls `layer.original` and does its own
 * work only while `layer.active`. Returns the undo, or null when there is no such method or
 * leakwatch already wraps it (anywhere in its chain of marked wrappers).
 */
export function wrapMethod<F extends Fn>(target: object, name: string, wrap: (layer: Layer<F>) => F): Undo | null {
  const methods = target as Record<string, unknown>;
  const current = methods[name];
  if (typeof current !== 'function' || layerOf(current) !== undefined) return null;
  const own = Object.getOwnPropertyDescriptor(target, name);
  const layer: Layer<F> = { original: current as F, active: true };
  const wrapper = wrap(layer) as Marked;
  copyIdentity(wrapper, current as Fn);
  Object.defineProperty(wrapper, LAYER, { value: layer });
  Object.defineProperty(wrapper, '__wrapped', { value: true, configurable: true });
  Object.defineProperty(wrapper, '__original', { get: () => layer.original, configurable: true });
  Object.defineProperty(wrapper, '__unwrap', { value: () => unwrapBeneath(layer), configurable: true });
  Object.defineProperty(target, name, {
    value: wrapper,
    writable: own?.writable ?? true,
    enumerable: own?.enumerable ?? false,
    configurable: true,
  });
  return () => {
    if (!layer.active) return;
    layer.active = false;
    if (Object.getOwnPropertyDescriptor(target, name)?.value !== wrapper) return; // someone wraps on top: stay, passing through
    if (own !== undefined) Object.defineProperty(target, name, { ...own, value: layer.original });
    else delete methods[name];
  };
}

export interface Accessor {
  get(this: unknown): unknown;
  /** Left out for a read-only property (a class getter): assigning it then fails as it did. */
  set?(this: unknown, value: unknown): void;
}

/**
 * Defines `name` on `target` as an accessor. The undo puts the property as it was back, unless
 * another tool has redefined it since (then what it put there stays).
 */
export function defineAccessor(target: object, name: string, accessor: Accessor): Undo {
  const before = Object.getOwnPropertyDescriptor(target, name);
  Object.defineProperty(target, name, { get: accessor.get, set: accessor.set, enumerable: before?.enumerable ?? false, configurable: true });
  let done = false;
  return () => {
    if (done) return;
    done = true;
    if (Object.getOwnPropertyDescriptor(target, name)?.get !== accessor.get) return;
    if (before !== undefined) Object.defineProperty(target, name, before);
    else delete (target as Record<string, unknown>)[name];
  };
}

/**
 * Subscribes to a diagnostics channel. A subscriber that throws would surface as an uncaught
 * exception in the host (Node rethrows it on the next tick), so the listener runs guarded.
 */
export function subscribe(channel: string, what: string, listener: (message: unknown) => void): Undo {
  const guardedListener = (message: unknown) => {
    try {
      listener(message);
    } catch (error) {
      logFailure(what, error);
    }
  };
  diagnostics_channel.subscribe(channel, guardedListener);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    diagnostics_channel.unsubscribe(channel, guardedListener);
  };
}

/** Runs every undo, newest first; each guarded. Calling the result twice is harmless. */
export function undoAll(undos: ReadonlyArray<Undo | null | undefined>, what = 'undoing an instrumentation'): Undo {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (let i = undos.length - 1; i >= 0; i--) {
      try {
        undos[i]?.();
      } catch (error) {
        logFailure(what, error);
      }
    }
  };
}

/**
 * Runs each step in order and gives one undo for all of them. If a step throws, the steps done so
 * far are undone and the error is rethrown: a failed install leaves nothing behind.
 */
export function applyAll(steps: ReadonlyArray<() => Undo | null | void>, what = 'undoing an instrumentation'): Undo {
  const undos: Undo[] = [];
  try {
    for (const step of steps) {
      const undo = step();
      if (typeof undo === 'function') undos.push(undo);
    }
  } catch (error) {
    undoAll(undos, what)();
    throw error;
  }
  return undoAll(undos, what);
}

interface Installation {
  count: number;
  undo: Undo;
}

const installations = shared('installations', () => new WeakMap<object, Map<string, Installation>>());

/**
 * Installs `key` on `target` once: the first caller runs `setup`, every caller gets a release of
 * its own, and the installation is undone when the last caller releases it. A `setup` that throws
 * installs nothing (it must leave nothing behind). Releasing twice is harmless.
 */
export function install(target: object, key: string, setup: () => Undo): Undo {
  let byKey = installations.get(target);
  if (byKey === undefined) installations.set(target, (byKey = new Map()));
  let entry = byKey.get(key);
  if (entry === undefined) {
    entry = { count: 0, undo: setup() };
    byKey.set(key, entry);
  }
  const installed = entry;
  installed.count++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--installed.count > 0) return;
    if (byKey.get(key) === installed) byKey.delete(key);
    try {
      installed.undo();
    } catch (error) {
      logFailure(`undoing ${key}`, error);
    }
  };
}

/** How many callers hold `key` on `target` now (0 when it is not installed); for tests and diagnostics. */
export function installCount(target: object, key: string): number {
  return installations.get(target)?.get(key)?.count ?? 0;
}
