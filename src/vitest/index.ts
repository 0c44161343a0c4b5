/**
 * `leakwatch/vitest`: the vitest integration arrives with its own issue. Until then this entry
 * exists so the subpath resolves, and says plainly that it does nothing yet.
 */
const MESSAGE = 'leakwatch/vitest is not built yet: use `leakwatch run -- vitest run` to fail CI on leaks meanwhile.';

export function findLeaks(): never {
  throw new Error(MESSAGE);
}

export function expectNoLeaks(): never {
  throw new Error(MESSAGE);
}
