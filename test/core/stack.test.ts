import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { appSiteOf, formatStack, frameKind } from '../../src/core/stack.js';

const ROOT = path.resolve(__dirname, '../..');
const capture = (...frames: string[]) => ({ stack: ['Error', ...frames.map((f) => `    ${f}`)].join('\n') });

describe('acquisition stacks', () => {
  describe('frameKind()', () => {
    it('tells the app’s frames from libraries’, leakwatch’s own and Node’s', () => {
      expect(frameKind('at handle (file:///srv/app/routes/orders.mjs:12:5)')).toBe('app');
      expect(frameKind('at async Server.<anonymous> (/srv/app/server.js:3:1)')).toBe('app');
      expect(frameKind('at /srv/app/index.js:7:9')).toBe('app');
      expect(frameKind('at Client_PG.acquireConnection (/srv/app/node_modules/knex/lib/client.js:465:42)')).toBe('library');
      expect(frameKind(`at startCheckout (${path.join(ROOT, 'dist/pg/checkout.js')}:80:3)`)).toBe('leakwatch');
      expect(frameKind('at x (/srv/app/node_modules/leakwatch/dist/pg/pool.js:1:1)')).toBe('leakwatch');
      expect(frameKind('at new Promise (<anonymous>)')).toBe('node');
      expect(frameKind('at process.processTicksAndRejections (node:internal/process/task_queues:95:5)')).toBe('node');
      expect(frameKind('at Server.emit (node:events:524:28)')).toBe('node');
    });
  });

  describe('appSiteOf()', () => {
    it('names the first frame of the app, following V8’s async frames past the library’s', () => {
      const stack = capture(
        'at /srv/app/node_modules/typeorm/driver/postgres/PostgresDriver.js:1085:25',
        'at new Promise (<anonymous>)',
        'at async EntityManager.transaction (/srv/app/node_modules/typeorm/entity-manager/EntityManager.js:82:13)',
        'at async placeOrder (file:///srv/app/orders%20api/orders.mjs:41:31)',
        'at async Server.<anonymous> (/srv/app/server.js:3:1)',
      );
      expect(appSiteOf(stack)).toBe('/srv/app/orders api/orders.mjs:41:31');
      expect(formatStack(stack)).toContain('node_modules/typeorm'); // library frames stay in the JSON
    });

    it('is null when the stack holds no frame of the app, or there is none', () => {
      expect(appSiteOf(capture('at Target.then (/srv/app/node_modules/knex/lib/builder-interface-augmenter.js:24:43)', 'at process.processTicksAndRejections (node:internal/process/task_queues:95:5)'))).toBeNull();
      expect(appSiteOf(null)).toBeNull();
    });
  });
});
