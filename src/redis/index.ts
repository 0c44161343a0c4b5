import type { ModulePatch } from '../core/module-hooks.js';
import { instrumentIoredis } from './instrument.js';

export { instrumentIoredis } from './instrument.js';
export { parseClientList, findByAddress, serverStateOf, type ClientListEntry } from './client-list.js';

/**
 * Patches `leakwatch/register` applies to the app's own `ioredis` as it loads. The folder is
 * `ioredis` in an app; an npm alias (`ioredis6` in leakwatch's own tests) is instrumented by calling
 * instrumentIoredis() on it.
 */
export const redisModulePatches: ModulePatch[] = [
  {
    file: 'ioredis/built/index.js',
    patch: (exports) => instrumentIoredis(exports),
  },
];
