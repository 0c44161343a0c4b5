import { createApp, healthyTraffic } from '../../fixtures/kysely-app.mjs';
import { pgUrl } from '../pg/support.js';
import { describeLibrary } from './support.js';

describeLibrary({
  library: 'kysely 0.28 (pg-pool)',
  fixture: 'kysely-app.mjs',
  createApp: () => createApp({ connection: pgUrl(), max: 4 }),
  healthyTraffic,
  leak: { path: '/orders?quantity=0', ownerPath: '/orders', status: 500, state: 'idle-in-transaction', acquiredOn: 'const order = await db.startTransaction().execute();' },
});
