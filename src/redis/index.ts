import type { ModulePatch } from '../core/module-hooks.js';
import { instrumentIoredis, type RedisInstrumentationOptions } from './instrument.js';

export { instrumentIoredis, type RedisInstrumentationOptions } from './instrument.js';
export { parseClientList, findByAddress, serverStateOf, type ClientListEntry } from './client-list.js';

/**
 * What `start()` and `leakwatch/register` patch in the app's own ioredis as it loads: the file
 * that defines the Redis class, reached by `require('ioredis')`, an ES import, or a deep path
 * (`ioredis/built/Redis.js`), and found in a folder of any name (an npm alias such as `ioredis6`).
 */
export function redisModulePatches(options: RedisInstrumentationOptions = {}): ModulePatch[] {
  return [{ package: 'ioredis', file: 'built/Redis.js', majors: [5, 6], library: 'ioredis', patch: (exports) => instrumentIoredis(exports, options) }];
}
