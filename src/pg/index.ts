import type { ModulePatch } from '../core/module-hooks.js';

/** Patches `leakwatch/register` applies to the app's own `pg` as it loads. */
export const pgModulePatches: ModulePatch[] = [];
