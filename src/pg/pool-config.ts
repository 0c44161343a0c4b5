/**
 * Lets `new pg.Pool({ leakwatchName: 'orders' })` type-check where @types/pg is installed.
 *
 * pg's types are named through this package's own `#pg-types` import (package.json `imports`, which
 * maps it to @types/pg): where @types/pg is not installed the name resolves to nothing and
 * TypeScript leaves the augmentation alone, whereas `declare module 'pg'` is an error against an
 * untyped pg. Module resolution `node16`, `nodenext` or `bundler` reads `imports`; under `node10`
 * the augmentation does not apply (name the pool with `watchPool(pool, { name })` there).
 */
export {};

declare module '#pg-types' {
  interface PoolConfig {
    /** The pool's name in leakwatch's reports, log lines and metrics. @default `host:port/database` */
    leakwatchName?: string;
  }
}
