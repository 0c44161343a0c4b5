import { ServerResponse } from 'node:http';
import { logFailure } from '../core/guard.js';
import type { EndOverride } from '../core/records.js';
import type { StackCapture } from '../core/records.js';
import { captureStack, siteOf } from '../core/stack.js';
import { responseOf } from './response-of.js';

/**
 * Records every assignment to `res.end` on a server response: where it was made, whether the
 * replacement was called, and whether it called through to the `end` it replaced.
 *
 * `ServerResponse.prototype.end` becomes an accessor. Reading it returns the newest replacement
 * (wrapped to note the call) or the original; assigning records the replacement (on the
 * response's record, see layersOf) instead of making an own property. Until some code assigns
 * `res.end` this costs one getter per `end()` call and nothing per request; after that, one 1-frame
 * stack capture per assignment, which is most of what attribution costs.
 */
type Fn = (...args: unknown[]) => unknown;

/** One replacement of `res.end`, at `position` in its response's list (0 = the first made). */
class EndLayer {
  called = false;
  calledThrough = false;
  /** What callers get for `res.end` while this is the newest replacement. */
  readonly wrapper: Fn;

  constructor(
    /** Where the assignment was made; formatted only when a report asks. */
    readonly site: StackCapture | null,
    layers: EndLayer[],
    position: number,
    replacement: unknown,
  ) {
    const layer = this;
    this.wrapper = function end(this: unknown) {
      layer.called = true;
      // Reaching this replacement from the one made after it means that one called through.
      const above = layers[position + 1];
      if (above !== undefined) above.calledThrough = true;
      // eslint-disable-next-line prefer-rest-params
      return typeof replacement === 'function' ? (replacement as Fn).apply(this, arguments as unknown as unknown[]) : undefined;
    };
  }
}

type Tracked = ServerResponse & { [kEndLayers]?: EndLayer[] };

const kEndLayers = Symbol('leakwatch.endLayers');
const INSTALLED = Symbol.for('leakwatch.endAttribution.v1');

type Installed = { undo: () => void };
const holder = ServerResponse.prototype as unknown as { [INSTALLED]?: Installed };

/**
 * The replacements made on `res`: on its record when the response is followed (a property added to
 * a response that Express has re-prototyped costs microseconds), else under a Symbol on `res`.
 */
function layersOf(res: Tracked): EndLayer[] | undefined {
  const response = responseOf(res);
  if (response !== undefined) return (response.endLayers as EndLayer[] | null) ?? undefined;
  return res[kEndLayers];
}

function newLayers(res: Tracked): EndLayer[] {
  const layers: EndLayer[] = [];
  const response = responseOf(res);
  if (response !== undefined) response.endLayers = layers;
  else res[kEndLayers] = layers;
  return layers;
}

export function endOverridesOf(res: object): EndOverride[] {
  const layers = layersOf(res as Tracked);
  if (layers === undefined) return [];
  return layers.map(({ site, called, calledThrough }) => ({ at: siteOf(site), called, calledThrough }));
}

/** Installs the accessor; idempotent. The returned function restores the plain method. */
export function instrumentEndAttribution(): () => void {
  const installed = holder[INSTALLED];
  if (installed !== undefined) return installed.undo;

  const proto = ServerResponse.prototype;
  const ownBefore = Object.getOwnPropertyDescriptor(proto, 'end');
  const original = proto.end as Fn;

  // What callers get when nothing replaced `end`. Reaching it means the bottom layer called through.
  const end = function end(this: Tracked) {
    const layers = layersOf(this);
    if (layers !== undefined && layers.length > 0) layers[0].calledThrough = true;
    // eslint-disable-next-line prefer-rest-params
    return original.apply(this, arguments as unknown as unknown[]);
  };

  function getEnd(this: Tracked) {
    const layers = layersOf(this);
    return layers === undefined || layers.length === 0 ? end : layers[layers.length - 1].wrapper;
  }

  function setEnd(this: Tracked, fn: unknown) {
    try {
      assign(this, fn);
    } catch (error) {
      logFailure('res.end attribution', error);
      Object.defineProperty(this, 'end', { value: fn, writable: true, configurable: true, enumerable: true });
    }
  }

  function assign(res: Tracked, fn: unknown) {
    let layers = layersOf(res);
    if (fn === end || fn === original) {
      if (layers !== undefined) layers.length = 0; // restored to the original
      return;
    }
    if (layers === undefined) {
      layers = newLayers(res);
    } else {
      // An earlier replacement put back: the ones made after it are gone.
      for (let i = layers.length - 1; i >= 0; i--) {
        if (layers[i].wrapper === fn) {
          layers.length = i + 1;
          return;
        }
      }
    }
    // The site is the one cost that grows with use: a 1-frame capture, formatted only for a report.
    layers.push(new EndLayer(captureStack(1, setEnd), layers, layers.length, fn));
  }

  Object.defineProperty(proto, 'end', { configurable: true, enumerable: false, get: getEnd, set: setEnd });

  const undo = () => {
    if (holder[INSTALLED]?.undo !== undo) return;
    delete holder[INSTALLED];
    if (ownBefore) Object.defineProperty(proto, 'end', ownBefore);
    else delete (proto as { end?: unknown }).end;
  };
  Object.defineProperty(holder, INSTALLED, { value: { undo }, configurable: true });
  return undo;
}
