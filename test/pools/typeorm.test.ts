import { createApp, healthyTraffic } from '../../fixtures/typeorm-app.mjs';
import { pgUrl } from '../pg/support.js';
import { describeLibrary } from './support.js';

describeLibrary({
  library: 'typeorm 1 (pg-pool)',
  fixture: 'typeorm-app.mjs',
  createApp: () => createApp({ connection: pgUrl(), poolSize: 4 }),
  healthyTraffic,
  leak: { path: '/orders?quantity=0', ownerPath: '/orders', status: 500, state: 'idle-in-transaction', acquiredOn: 'await order.connect();' },
});
