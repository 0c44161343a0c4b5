import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start, wrapFetchHandler, type Started } from '../../src/index.js';
import { currentResponse, getRuntime } from '../support/internals.js';
import { sleep, waitUntil } from '../support/http.js';

let started: Started;
beforeAll(() => {
  started = start({ responseThreshold: 200 });
});
afterAll(() => started.stop());

const ledger = () => getRuntime()!.ledger;

function streaming(chunks: string[], onCancel?: () => void) {
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = chunks.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(new TextEncoder().encode(next));
    },
    cancel: onCancel,
  });
}

describe('wrapFetchHandler(fetch)', () => {
  it('closes a response as finished when its body is read to the end, and runs the handler in its context', async () => {
    let context: string | undefined;
    const fetch = wrapFetchHandler(async (_request: Request) => {
      context = currentResponse()?.id;
      return new Response(streaming(['a', 'b', 'c']), { status: 201, headers: { 'x-kept': '1' } });
    });
    const before = ledger().totals.responses;
    const response = await fetch(new Request('http://app/items?secret=1'));
    expect(response.status).toBe(201);
    expect(response.headers.get('x-kept')).toBe('1');
    expect(ledger().totals.responses).toBe(before);
    expect(await response.text()).toBe('abc');
    expect(ledger().totals.responses).toBe(before + 1);
    expect(context).toMatch(/:r\d+$/);
  });

  it('closes a response as aborted when its body is cancelled, and passes the cancel on to the body source', async () => {
    let cancelled = false;
    const fetch = wrapFetchHandler(() => new Response(streaming(['a', 'b'], () => void (cancelled = true))));
    const aborted = ledger().totals.aborted;
    const response = await fetch(new Request('http://app/stream'));
    const reader = response.body!.getReader();
    await reader.read();
    await reader.cancel('client went away');
    expect(cancelled).toBe(true);
    expect(ledger().totals.aborted).toBe(aborted + 1);
  });

  it('reports a body that is neither read nor cancelled as unclosed', async () => {
    const fetch = wrapFetchHandler(() => new Response(streaming(['never read'])));
    const before = ledger().totals.leakedResponses;
    const response = await fetch(new Request('http://app/forgotten?token=x'));
    await waitUntil(() => ledger().totals.leakedResponses === before + 1, 2000, 'the unread body to leak');
    await response.body!.cancel();
  });

  it('closes at once a response without a body, and one whose handler throws (the error passes through)', async () => {
    const before = ledger().totals.responses;
    const empty = wrapFetchHandler(() => new Response(null, { status: 204 }));
    expect((await empty(new Request('http://app/empty'))).status).toBe(204);
    const failing = wrapFetchHandler(async () => {
      throw new Error('handler failed');
    });
    await expect(failing(new Request('http://app/fail'))).rejects.toThrow('handler failed');
    expect(ledger().totals.responses).toBe(before + 2);
    await sleep(250);
    expect([...ledger().eachOpenResponse()]).toHaveLength(0);
  });

  it('returns the same wrapper when wrapped twice', () => {
    const fetch = wrapFetchHandler(() => new Response('x'));
    expect(wrapFetchHandler(fetch)).toBe(fetch);
  });
});
