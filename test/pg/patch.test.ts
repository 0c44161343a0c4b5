import { describe, expect, it } from 'vitest';
import { instrumentOnce, isPatched, patchMethod, PATCHED } from '../../src/pg/patch.js';

class Base {
  greet(name: string): string {
    return `hello ${name}`;
  }
}

describe('patchMethod(target, name, wrap)', () => {
  it('wraps once, marks the wrapper with the original, and restores the own property or its absence', () => {
    class Child extends Base {}
    const calls: string[] = [];
    const undo = patchMethod(Base.prototype, 'greet', (original) =>
      function (this: Base, ...args: unknown[]) {
        calls.push(String(args[0]));
        return original.apply(this, args);
      },
    )!;
    expect(new Child().greet('a')).toBe('hello a');
    expect(calls).toEqual(['a']);
    expect((Base.prototype.greet as unknown as Record<symbol, unknown>)[PATCHED]).toBeTypeOf('function');
    expect(patchMethod(Base.prototype, 'greet', (o) => o)).toBeNull();
    undo();
    expect(isPatched(Base.prototype.greet)).toBe(false);

    const instance = new Base();
    const undoOwn = patchMethod(instance, 'greet', (original) => original)!;
    expect(Object.hasOwn(instance, 'greet')).toBe(true);
    undoOwn();
    expect(Object.hasOwn(instance, 'greet')).toBe(false);
  });

  it('becomes a pass-through when undone under someone else’s wrapper, keeping theirs', () => {
    const target = { run: (x: number) => x + 1 };
    const undo = patchMethod(target, 'run', (original, on) => (x: number) => (on.enabled ? (original(x) as number) * 10 : original(x)))!;
    const ours = target.run;
    target.run = (x: number) => ours(x) + 1000; // another tool wraps after us
    expect(target.run(1)).toBe(1020);
    undo();
    expect(target.run(1)).toBe(1002);
  });
});

describe('instrumentOnce(target, instrument)', () => {
  it('instruments once, hands every caller the same undo, and can instrument again after it', () => {
    const target = {};
    let made = 0;
    const undo = instrumentOnce(target, () => [() => void made--, (made++, null)]);
    expect(instrumentOnce(target, () => [(made++, null)])).toBe(undo);
    expect(made).toBe(1);
    undo();
    expect(made).toBe(0);
    expect(Object.getOwnPropertySymbols(target)).toEqual([]);
    expect(instrumentOnce(target, () => [])).not.toBe(undo);
  });
});
