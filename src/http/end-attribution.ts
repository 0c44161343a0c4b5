import { ServerResponse } from 'node:http';
import { logFailure } from '../core/guard.js';
import { install, type Fn, type Undo } from '../core/patch.js';
import type { EndOverride, ResponseRecord, StackCapture } from '../core/records.js';
import { SitesByCode } from '../core/sites.js';
import { captureStack, siteOf } from '../core/stack.js';
import { shared } from '../core/state.js';
import { responseOf } from './response-of.js';

/**
 * Records every assignment to `res.end` on a server response: where it was made, whether the
 * replacement was called, and whether it called through to the `end` it replaced.
 *
 * `end` becomes an accessor, on a prototype of leakwatch's own just below ServerResponse.prototype
 * (see installEndAttribution). On a response, reading it gives the newest
 * replacement (wrapped to note the call) or, when there is none, an `end` of leakwatch's that
 * notes the bottom replacement called through and calls the prototype's `end`; assigning it
 * records the replacement (on the response's record, see layersOf) instead of making an own
 * property. Until some code assigns `res.end` this costs one getter per `end()` call and nothing
 * per request; after that, per assignment, the replacement's source text read and compared (its
 * site is captured once per distinct source, see src/core/sites.ts) and one small wrapper.
 *
 * On a prototype (`ServerResponse.prototype` itself, or a framework's response prototype such as
 * Express's `app.response`) the property behaves as a plain method: reading gives the `end` every
 * response of that prototype calls, and assigning replaces it for all of them, followed or not, as
 * an agent patching the prototype expects. A tool that defines `end` on ServerResponse.prototype
 * itself (`Object.defineProperty`, shimmer) is taken in at the next response: its function becomes
 * that `end`, and attribution goes on above it.
 */

/** One replacement of `res.end`, at `position` in its response's list (0 = the first made). */
class EndLayer {
  /** Kept apart from the layer, so that a report's live view of it holds no closure of the app's. */
  readonly verdict = { called: false, calledThrough: false };
  /** What callers get for `res.end` while this is the newest replacement. */
  readonly wrapper: Fn;

  constructor(
    /** Where the assignment was made; formatted only when a report asks. */
    readonly site: StackCapture | null,
    layers: EndLayer[],
    position: number,
    replacement: unknown,
  ) {
    const verdict = this.verdict;
    this.wrapper = function end(this: unknown) {
      verdict.called = true;
      // Reaching this replacement from the one made after it means that one called through.
      const above = layers[position + 1];
      if (above !== undefined) above.verdict.calledThrough = true;
      return typeof replacement === 'function' ? (replacement as Fn).apply(this, arguments as unknown as unknown[]) : undefined;
    };
  }
}

const kLayers = Symbol('leakwatch.endLayers');
/** The `end` the responses of a prototype call: own on ServerResponse.prototype, and on any prototype assigned one. */
const kBase = Symbol('leakwatch.endBase');

type Response = ServerResponse & { [kLayers]?: EndLayer[]; [kBase]: Fn };
const proto = ServerResponse.prototype as Response;

/** A prototype, not a response: responses get `req` in their constructor. */
function isPrototype(target: object): boolean {
  return target === proto || !Object.prototype.hasOwnProperty.call(target, 'req');
}

/**
 * The replacements made on `res`: on its record while the response is followed and open (a
 * property added to a response that Express has re-prototyped costs microseconds), else under a
 * Symbol on `res`.
 */
function layersOf(res: Response, response: ResponseRecord | undefined = responseOf(res)): EndLayer[] | undefined {
  return (response?.endLayers as EndLayer[] | null | undefined) ?? res[kLayers];
}

/** Keeps `layers` where layersOf() finds them. */
function keepLayers(res: Response, response: ResponseRecord | undefined, layers: EndLayer[]): void {
  if (response !== undefined && response.closedAt === 0) response.endLayers = layers;
  else res[kLayers] = layers;
}

/**
 * At the close of a response whose record is kept for a report (it leaked, or still holds
 * connections): the record must not keep the replacements, nor the response they close over. They
 * move to the response object, which goes on calling `end` through them: an app may end a response
 * after its client left, and its own replacement (a release on end) must still run.
 */
export function keepEndLayersOffRecord(res: object, response: ResponseRecord): void {
  const layers = response.endLayers as EndLayer[] | null;
  if (layers === null) return;
  if (response.leak === null && (response.connections === null || response.connections.length === 0)) return; // let go with the record
  response.endLayers = null;
  (res as Response)[kLayers] = layers;
}

/**
 * The replacements made on `res`. `called` and `calledThrough` are read live: a report may describe
 * a response that closed (an abort) before its handler called `end`.
 */
export function endOverridesOf(res: object): EndOverride[] {
  const layers = layersOf(res as Response);
  if (layers === undefined) return [];
  return layers.map(({ site, verdict }) => ({
    at: siteOf(site),
    get called() {
      return verdict.called;
    },
    get calledThrough() {
      return verdict.calledThrough;
    },
  }));
}

/** What a response calls when `end` was not replaced on it. Reaching it means the bottom replacement called through. */
function end(this: Response) {
  const layers = layersOf(this);
  if (layers !== undefined && layers.length > 0) layers[0].verdict.calledThrough = true;
  return this[kBase].apply(this, arguments as unknown as unknown[]);
}

function getEnd(this: Response): Fn {
  const response = responseOf(this);
  if (response === undefined && isPrototype(this)) return this[kBase];
  const layers = layersOf(this, response);
  return layers === undefined || layers.length === 0 ? end : layers[layers.length - 1].wrapper;
}

/** Prototypes other than ServerResponse.prototype that were assigned an `end` (Express's app.response). */
const prototypesWithBase = new Set<object>();

function setEnd(this: Response, fn: unknown): void {
  try {
    const response = responseOf(this);
    if (response === undefined && isPrototype(this)) {
      Object.defineProperty(this, kBase, { value: fn, writable: true, configurable: true });
      if (this !== proto) prototypesWithBase.add(this);
    } else {
      assign(this, response, fn);
    }
  } catch (error) {
    logFailure('res.end attribution', error);
    Object.defineProperty(this, 'end', { value: fn, writable: true, configurable: true, enumerable: true });
  }
}

function assign(res: Response, response: ResponseRecord | undefined, fn: unknown): void {
  const layers = layersOf(res, response);
  if (fn === end || fn === res[kBase]) {
    if (layers !== undefined) layers.length = 0; // restored to what the prototype gives
    return;
  }
  if (layers === undefined) {
    // Most responses get one replacement: a list of one slot (a first push would allocate 16).
    const first = new Array<EndLayer>(1);
    first[0] = new EndLayer(assignmentSites.siteFor(fn), first, 0, fn);
    keepLayers(res, response, first);
    return;
  }
  // An earlier replacement put back: the ones made after it are gone.
  for (let i = layers.length - 1; i >= 0; i--) {
    if (layers[i].wrapper === fn) {
      layers.length = i + 1;
      return;
    }
  }
  layers.push(new EndLayer(assignmentSites.siteFor(fn), layers, layers.length, fn));
}

/**
 * The site of each assignment: a 1-frame capture once per distinct replacement source, reused for
 * the closures of the same code that later requests assign (src/core/sites.ts).
 */
const assignmentSites = new SitesByCode(() => captureStack(1, setEnd));

/** The installed attribution's check, whichever copy of leakwatch installed it. */
const installed = shared<{ keep: (() => void) | null }>('endAttribution', () => ({ keep: null }));

/**
 * Takes in an `end` another tool defined on ServerResponse.prototype itself since (shimmer's wrap,
 * `Object.defineProperty`): it becomes the base every response calls, and attribution goes on
 * above it. Called as each response starts; one own-property test when nothing changed.
 */
export function keepEndAttribution(): void {
  installed.keep?.();
}

function keep(): void {
  if (!Object.prototype.hasOwnProperty.call(proto, 'end')) return;
  try {
    const current = Object.getOwnPropertyDescriptor(proto, 'end');
    if (current === undefined || !current.configurable || typeof current.value !== 'function') return; // an accessor of theirs: theirs stands
    Object.defineProperty(proto, kBase, { value: current.value, writable: true, configurable: true });
    delete (proto as Partial<Response>).end;
  } catch (error) {
    logFailure('res.end attribution', error);
  }
}

/**
 * The accessor is not put on ServerResponse.prototype but on a prototype of leakwatch's own,
 * inserted between it and OutgoingMessage.prototype (where Node defines `end`). ServerResponse's
 * own properties stay exactly Node's: a tool that wraps `ServerResponse.prototype.end` finds no
 * own property there, as without leakwatch, and wraps the method rather than a getter (dd-trace's
 * shimmer wraps an accessor's getter in place, so its hook would run when `res.end` is read).
 */
function installEndAttribution(): Undo {
  const parent = Object.getPrototypeOf(proto) as object;
  // Node's `end` is OutgoingMessage's; an own one only if some tool put it there already.
  const before = Object.getOwnPropertyDescriptor(proto, 'end');
  const base: unknown = proto.end;
  if (typeof base !== 'function') throw new TypeError('ServerResponse.prototype.end is not a method here; res.end attribution is off.');
  const layer = Object.create(parent) as object;
  Object.defineProperty(layer, kBase, { value: base, writable: true, configurable: true });
  Object.defineProperty(layer, 'end', { get: getEnd, set: setEnd, enumerable: false, configurable: true });
  if (before !== undefined) delete (proto as Partial<Response>).end;
  Object.setPrototypeOf(proto, layer);
  installed.keep = keep;
  return () => {
    if (installed.keep === keep) installed.keep = null;
    // The `end` responses call now, including other tools' patches made since.
    const current = proto[kBase];
    const own = Object.prototype.hasOwnProperty.call(proto, 'end');
    if (Object.getPrototypeOf(proto) === layer) Object.setPrototypeOf(proto, parent);
    else Object.defineProperty(layer, 'end', { value: current, writable: true, configurable: true }); // someone re-parented since: stay, inert
    if (!own && (before !== undefined || current !== parent[('end' as keyof object)])) {
      Object.defineProperty(proto, 'end', { writable: true, enumerable: before?.enumerable ?? false, configurable: true, value: current });
    }
    delete (proto as Partial<Response>)[kBase];
    // Each other prototype assigned an `end` gets it back as a plain property.
    for (const target of prototypesWithBase) {
      Object.defineProperty(target, 'end', { value: (target as Response)[kBase], writable: true, configurable: true, enumerable: true });
      delete (target as Partial<Response>)[kBase];
    }
    prototypesWithBase.clear();
  };
}

/** Installs the accessor; shared by every caller, undone when the last one lets go. */
export function instrumentEndAttribution(): Undo {
  return install(proto, 'res.end attribution', installEndAttribution);
}
