import { ServerResponse } from 'node:http';
import { logFailure } from '../core/guard.js';
import type { EndOverride } from '../core/records.js';
import type { StackCapture } from '../core/records.js';
import { captureStack, siteOf } from '../core/stack.js';

/**
 * Records every assignment to `res.end` on a server response: where it was made, whether the
 * replacement was called, and whether it called through to the `end` it replaced.
 *
 * `ServerResponse.prototype.end` becomes an accessor. Reading it returns the newest replacement
 * (wrapped to note the call) or the original; assigning stores the replacement on the response
 * instead of as an own property. Until some code assigns `res.end` this costs one getter per
 * `end()` call and nothing per request.
 */
interface EndLayer {
  /** Where the assignment was made; formatted only when a report asks. */
  site: StackCapture | null;
  called: boolean;
  calledThrough: boolean;
  wrapper: (...args: unknown[]) => unknown;
}

type Tracked = ServerResponse & { [kEndLayers]?: EndLayer[] };

const kEndLayers = Symbol('leakwatch.endLayers');
const kLayerIndex = Symbol('leakwatch.endLayerIndex');
const INSTALLED = Symbol.for('leakwatch.endAttribution.v1');

type Installed = { undo: () => void };
const holder = ServerResponse.prototype as unknown as { [INSTALLED]?: Installed };

export function endOverridesOf(res: object): EndOverride[] {
  const layers = (res as Tracked)[kEndLayers];
  if (layers === undefined) return [];
  return layers.map(({ site, called, calledThrough }) => ({ at: siteOf(site), called, calledThrough }));
}

/** Installs the accessor; idempotent. The returned function restores the plain method. */
export function instrumentEndAttribution(): () => void {
  const installed = holder[INSTALLED];
  if (installed !== undefined) return installed.undo;

  const proto = ServerResponse.prototype;
  const ownBefore = Object.getOwnPropertyDescriptor(proto, 'end');
  const original = proto.end as (...args: unknown[]) => unknown;

  // What callers get when nothing replaced `end`. Reaching it means the bottom layer called through.
  const end = function end(this: Tracked) {
    const layers = this[kEndLayers];
    if (layers !== undefined && layers.length > 0) layers[0].calledThrough = true;
    // eslint-disable-next-line prefer-rest-params
    return original.apply(this, arguments as unknown as unknown[]);
  };

  function getEnd(this: Tracked) {
    const layers = this[kEndLayers];
    return layers === undefined || layers.length === 0 ? end : layers[layers.length - 1].wrapper;
  }

  function setEnd(this: Tracked, fn: unknown) {
    try {
      assign(this, fn, setEnd);
    } catch (error) {
      logFailure('res.end attribution', error);
      Object.defineProperty(this, 'end', { value: fn, writable: true, configurable: true, enumerable: true });
    }
  }

  function assign(res: Tracked, fn: unknown, setter: (fn: unknown) => void) {
    let layers = res[kEndLayers];
    if (fn === end || fn === original) {
      if (layers !== undefined) layers.length = 0; // restored to the original
      return;
    }
    const index = typeof fn === 'function' ? (fn as { [kLayerIndex]?: number })[kLayerIndex] : undefined;
    if (layers !== undefined && index !== undefined && layers[index]?.wrapper === fn) {
      layers.length = index + 1; // an earlier replacement put back
      return;
    }
    layers ??= res[kEndLayers] = [];
    const position = layers.length;
    const layerList = layers;
    const wrapper = function end(this: unknown) {
      const layer = layerList[position];
      if (layer !== undefined) layer.called = true;
      const above = layerList[position + 1];
      if (above !== undefined) above.calledThrough = true;
      // eslint-disable-next-line prefer-rest-params
      return typeof fn === 'function' ? fn.apply(this, arguments) : undefined;
    } as ((...args: unknown[]) => unknown) & { [kLayerIndex]?: number };
    wrapper[kLayerIndex] = position;
    layers.push({ site: captureStack(1, setter), called: false, calledThrough: false, wrapper });
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
