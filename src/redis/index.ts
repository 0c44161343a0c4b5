import type { ModulePatch } from '../core/module-hooks.js';

/** Patches `leakwatch/register` applies to the app's own `ioredis` as it loads. */
export const redisModulePatches: ModulePatch[] = [];
