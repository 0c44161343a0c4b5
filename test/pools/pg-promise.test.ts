import { createApp, healthyTraffic } from '../../fixtures/pg-promise-app.mjs';
import { pgUrl } from '../pg/support.js';
import { describeLibrary } from './support.js';

describeLibrary({
  library: 'pg-promise 12 (its own pg 8.23.0, pg-pool)',
  fixture: 'pg-promise-app.mjs',
  createApp: () => createApp({ connection: pgUrl(), max: 4 }),
  healthyTraffic,
  leak: { path: '/orders?quantity=0', ownerPath: '/orders', status: 500, state: 'idle-in-transaction', acquiredOn: 'const order = await db.connect();' },
});
