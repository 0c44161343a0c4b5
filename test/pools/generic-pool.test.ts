import { createApp, healthyTraffic } from '../../fixtures/generic-pool-app.mjs';
import { pgUrl } from '../pg/support.js';
import { describeLibrary } from './support.js';

// A pool of pg Clients the app keeps itself: min 2 made at start-up, held by nobody while idle.
describeLibrary({
  library: 'generic-pool 3 (a pool of pg Clients)',
  fixture: 'generic-pool-app.mjs',
  createApp: () => createApp({ connection: pgUrl(), min: 2, max: 4 }),
  healthyTraffic,
  leak: { path: '/orders?quantity=0', ownerPath: '/orders', status: 500, state: 'idle', acquiredOn: 'const order = await pool.acquire();' },
});
