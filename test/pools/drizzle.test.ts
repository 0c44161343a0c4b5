import { createApp, healthyTraffic } from '../../fixtures/drizzle-app.mjs';
import { pgUrl } from '../pg/support.js';
import { describeLibrary } from './support.js';

describeLibrary({
  library: 'drizzle-orm 0.45 (pg-pool)',
  fixture: 'drizzle-app.mjs',
  createApp: () => createApp({ connection: pgUrl(), max: 4 }),
  healthyTraffic,
  leak: { path: '/report?year=0', ownerPath: '/report', status: 500, state: 'idle', acquiredOn: 'const reporting = await pool.connect();' },
});
