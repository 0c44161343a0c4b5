import type { ModulePatch } from '../core/module-hooks.js';
import { CLIENT_FILE } from './copy.js';
import { instrumentClientModule, type NodeRedisInstrumentationOptions } from './instrument.js';

export { instrumentNodeRedis, type NodeRedisInstrumentationOptions } from './instrument.js';

/**
 * What `start()` and `leakwatch/register` patch in the app's own node-redis as it loads: the file
 * of @redis/client that defines `RedisClient` (its command queue and client pool load before it),
 * however it is reached (`redis`, `@redis/client`, an ES import, a deep path) and from a folder of
 * any name (`redis` 4, 5 and 6 installed side by side under npm aliases each have their own).
 */
export function nodeRedisModulePatches(options: NodeRedisInstrumentationOptions = {}): ModulePatch[] {
  return [
    {
      package: '@redis/client',
      file: CLIENT_FILE,
      majors: [1, 5, 6],
      library: 'redis',
      patch: (exports, filename) => instrumentClientModule(exports, filename, options),
    },
  ];
}
