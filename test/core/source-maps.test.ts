import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureStack, formatStack, frameKind, siteOf } from '../../src/core/stack.js';

/**
 * Frames as reports show them: Node's and leakwatch's own left out, library and framework frames
 * told from the app's, and generated code (compiled TypeScript, a bundle) mapped to its source
 * where the process has source maps on, whoever formats stacks.
 */

/** What an instrumented acquire does: captures the frames of its caller and above. */
function acquire(): unknown {
  return captureStack(3, acquire);
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-stack-'));
const load = createRequire(path.join(dir, 'noop.js'));

/** `src/<name>.ts` compiled by TypeScript to `dist/<name>.js` with its source map beside it. */
function compile(name: string, source: string): string {
  const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true }, fileName: `${name}.ts` });
  mkdirSync(path.join(dir, 'src'), { recursive: true });
  mkdirSync(path.join(dir, 'dist'), { recursive: true });
  writeFileSync(path.join(dir, 'src', `${name}.ts`), source);
  const map = JSON.parse(out.sourceMapText!) as { sources: string[] };
  map.sources = [`../src/${name}.ts`];
  writeFileSync(path.join(dir, 'dist', `${name}.js.map`), JSON.stringify(map));
  writeFileSync(path.join(dir, 'dist', `${name}.js`), out.outputText);
  return path.join(dir, 'dist', `${name}.js`);
}

// Line 4 is where the capture is made: the line a report must name.
const SERVICE = `type Row = { id: number };
export function checkout(acquire: () => unknown): unknown {
  const rows: Row[] = [];
  return acquire() ?? rows;
}
`;

describe('formatStack(capture)', () => {
  describe('when the frames include Node\'s own and leakwatch\'s', () => {
    it('leaves them out, node:internal and node:diagnostics_channel alike', () => {
      const capture = {
        stack: [
          'Error',
          '    at Pool.connect (/srv/app/node_modules/leakwatch/dist/pg/pool.js:10:5)',
          '    at Channel.publish (node:diagnostics_channel:322:14)',
          '    at node:internal/process/task_queues:95:5',
          '    at UsersService.find (/srv/app/src/users.service.ts:9:39)',
          '    at Router.handle (/srv/app/node_modules/fastify/lib/route.js:1:1)',
        ].join('\n'),
      };
      expect(formatStack(capture)).toBe('at UsersService.find (/srv/app/src/users.service.ts:9:39)\nat Router.handle (/srv/app/node_modules/fastify/lib/route.js:1:1)');
    });

    it('is null when nothing else is left, never a Node frame in their place', () => {
      expect(formatStack({ stack: 'Error\n    at Channel.publish (node:diagnostics_channel:322:14)\n    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)' })).toBeNull();
    });
  });

  describe('when the app runs compiled code with source maps on', () => {
    let checkout: (acquire: () => unknown) => unknown;
    beforeAll(() => {
      process.setSourceMapsEnabled(true);
      checkout = (load(compile('service', SERVICE)) as { checkout: typeof checkout }).checkout;
    });
    afterAll(() => process.setSourceMapsEnabled(false));

    it("names the TypeScript source's line", () => {
      const capture = checkout(acquire) as { stack?: string };
      expect(formatStack(capture)!.split('\n')[0]).toMatch(new RegExp(`^at checkout \\(${escape(path.join(dir, 'src', 'service.ts'))}:4:\\d+\\)$`));
      expect(siteOf(capture)).toMatch(new RegExp(`^${escape(path.join(dir, 'src', 'service.ts'))}:4:\\d+$`));
    });

    it('maps frames a framework formatted unmapped with its own Error.prepareStackTrace (as Next.js does)', () => {
      const before = Error.prepareStackTrace;
      Error.prepareStackTrace = (error, frames) => `${String(error)}\n${frames.map((frame) => `    at ${frame.toString()}`).join('\n')}`;
      try {
        const capture = checkout(acquire) as { stack?: string };
        expect(capture.stack).toContain(path.join(dir, 'dist', 'service.js'));
        expect(formatStack(capture)!.split('\n')[0]).toContain(`${path.join(dir, 'src', 'service.ts')}:4:`);
      } finally {
        Error.prepareStackTrace = before;
      }
    });
  });

  describe("when a webpack bundle's map names its sources webpack://<app>/./…", () => {
    it("names the file in the app's folder, the one that holds .next", () => {
      const bundle = path.join(dir, 'next', '.next', 'server', 'chunks', '42.js');
      mkdirSync(path.dirname(bundle), { recursive: true });
      const out = ts.transpileModule(SERVICE, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true }, fileName: 'route.ts' });
      const map = JSON.parse(out.sourceMapText!) as { sources: string[] };
      map.sources = ['webpack://my-app/./app/api/route.ts'];
      writeFileSync(`${bundle}.map`, JSON.stringify(map));
      writeFileSync(bundle, out.outputText.replace(/\/\/# sourceMappingURL=.*$/m, '//# sourceMappingURL=42.js.map'));
      process.setSourceMapsEnabled(true);
      try {
        const { checkout } = load(bundle) as { checkout: (acquire: () => unknown) => unknown };
        const capture = checkout(acquire) as { stack?: string };
        expect(siteOf(capture)).toMatch(new RegExp(`^${escape(path.join(dir, 'next', 'app', 'api', 'route.ts'))}:4:\\d+$`));
      } finally {
        process.setSourceMapsEnabled(false);
      }
    });
  });

  describe('when an index map names its sources relative to itself, percent-encoded (Turbopack, Next.js 16.5)', () => {
    /** A chunk whose map has one section; `mapAt` is the map's path relative to the chunk's folder. */
    function chunk(name: string, mapAt: string): string {
      const file = path.join(dir, 'turbo', '.next', 'server', 'chunks', `[root-of-the-server]__${name}._.js`);
      const out = ts.transpileModule(SERVICE, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, sourceMap: true }, fileName: 'route.ts' });
      const section = JSON.parse(out.sourceMapText!) as { sources: string[]; file?: string };
      const mapFile = path.resolve(path.dirname(file), mapAt);
      // The app's file, relative to the map, as a URL: `[id]` becomes `%5Bid%5D`.
      section.sources = [`${path.relative(path.dirname(mapFile), path.join(dir, 'turbo')).split(path.sep).join('/')}/app/api/%5Bid%5D/route.ts`];
      mkdirSync(path.dirname(mapFile), { recursive: true });
      writeFileSync(mapFile, JSON.stringify({ version: 3, sources: [], sections: [{ offset: { line: 0, column: 0 }, map: section }] }));
      writeFileSync(file, out.outputText.replace(/\/\/# sourceMappingURL=.*$/m, `//# sourceMappingURL=${encodeURI(mapAt).replace(/\[/g, '%5B').replace(/\]/g, '%5D')}`));
      return file;
    }

    function siteIn(file: string): string | null {
      process.setSourceMapsEnabled(true);
      try {
        const { checkout } = load(file) as { checkout: (acquire: () => unknown) => unknown };
        return siteOf(checkout(acquire) as { stack?: string });
      } finally {
        process.setSourceMapsEnabled(false);
      }
    }

    const route = () => new RegExp(`^${escape(path.join(dir, 'turbo', 'app', 'api', '[id]', 'route.ts'))}:4:\\d+$`);

    it("names the file in the app's folder, decoded, with the map beside the chunk", () => {
      expect(siteIn(chunk('beside', '[root-of-the-server]__beside._.js.map'))).toMatch(route());
    });

    it('resolves the sources against the map, not the chunk, when the map is elsewhere', () => {
      expect(siteIn(chunk('elsewhere', '../../../maps/elsewhere.js.map'))).toMatch(route());
    });
  });

  describe('when source maps are off', () => {
    it('shows the generated line, as Node would', () => {
      const file = compile('plain', SERVICE.replace('checkout', 'plain'));
      const { plain } = load(file) as { plain: (acquire: () => unknown) => unknown };
      expect(siteOf(plain(acquire) as { stack?: string })).toContain(file);
    });
  });
});

describe('frameKind(frame) in a Next.js app', () => {
  it("counts Next's own code and the module runtime of its build as libraries, the app's chunks as the app's", () => {
    expect(frameKind('at GET (/srv/app/app/api/leak/[id]/route.js:7:29)')).toBe('app');
    expect(frameKind('at i (/srv/app/.next/server/chunks/_0xlpjsbv7p7ho._.js:1:140)')).toBe('app');
    expect(frameKind('at async r0.render (/srv/app/node_modules/next/dist/compiled/next-server/app-route.runtime.prod.js:5:1)')).toBe('library');
    expect(frameKind('at r0.render (/srv/app/.next/standalone/node_modules/next/dist/server/base-server.js:5:1)')).toBe('library');
    expect(frameKind('at instantiateModule (/srv/app/.next/server/chunks/[turbopack]_runtime.js:715:9)')).toBe('library');
    expect(frameKind('at __webpack_require__ (/srv/app/.next/server/webpack-runtime.js:25:43)')).toBe('library');
    expect(frameKind('at Channel.runStores (node:diagnostics_channel:322:14)')).toBe('node');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
