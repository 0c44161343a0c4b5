/**
 * Observers of a state machine (the ledger, the pool waits), kept per event: for each event, the
 * observers that have a method for it, read when they start observing. A transition reads its
 * event's list by name (`listeners.responseClosed`) and calls only those: looked up by the event's
 * name on each observer instead, one property access sees every event's name, and V8 reads it the
 * slow way (a megamorphic keyed load) on every transition.
 */
export interface Listener<O> {
  readonly observer: O;
  readonly fn: (this: O, first: never, second?: never) => void;
}

/** Each event's listeners, in the order the observers came; every event has a list, maybe empty. */
export type Listeners<O, E extends keyof O> = { [K in E]-?: Array<Listener<O>> };

export function listenersOf<O, E extends keyof O>(observers: readonly O[], events: readonly E[]): Listeners<O, E> {
  const listeners = {} as Listeners<O, E>;
  for (const event of events) {
    const list: Array<Listener<O>> = [];
    for (const observer of observers) {
      const fn = observer[event];
      if (typeof fn === 'function') list.push({ observer, fn: fn as Listener<O>['fn'] });
    }
    listeners[event] = list;
  }
  return listeners;
}

/**
 * Calls each of `listeners` (one event's) with `first` and `second`; one that throws is reported
 * to `onFailure` as `${source} ${event}`, and the others still run.
 */
export function notifyListeners<O>(
  listeners: ReadonlyArray<Listener<O>>,
  first: unknown,
  second: unknown,
  onFailure: (what: string, error: unknown) => void,
  source: string,
  event: string,
): void {
  for (let i = 0; i < listeners.length; i++) {
    const { observer, fn } = listeners[i];
    try {
      (fn as (this: O, first: unknown, second: unknown) => void).call(observer, first, second);
    } catch (error) {
      onFailure(`${source} ${event}`, error);
    }
  }
}
