import path from 'node:path';
import { buildApp, type AppBuild } from './app-build.mjs';

/**
 * The fixture apps of the framework tests, as the tests build them. Each build is made once and
 * kept (see app-build.mts); what it took is written to stderr so a test run shows it.
 */

function announce(what: string, build: AppBuild): AppBuild {
  const how = build.buildSeconds === null ? 'reused from .cache/apps' : `built in ${build.buildSeconds.toFixed(1)} s`;
  process.stderr.write(`[frameworks] ${what}: ${how} (${path.basename(build.dir)})\n`);
  return build;
}

/**
 * fixtures/next-app built by `next build` with the Next.js of the repository's node_modules folder
 * `nextFolder` (`next` is 16.x, `next15` is 15.x). leakwatch is one of its packages: the app
 * hands the copy of ioredis Next bundles to it.
 */
export async function nextApp(nextFolder: 'next' | 'next15'): Promise<AppBuild> {
  const build = await buildApp({
    fixture: 'next-app',
    label: nextFolder,
    packages: { next: nextFolder, react: 'react', 'react-dom': 'react-dom', pg: 'pg', ioredis: 'ioredis', leakwatch: '.' },
    build: ['npm', 'run', 'build'],
    expect: ['.next/BUILD_ID', '.next/standalone/server.js'],
  });
  return announce(`fixtures/next-app with ${nextFolder}`, build);
}

/** fixtures/next-bundled-pg, whose config makes Next 16 bundle pg: the app hands its copy to instrumentPg. */
export async function nextBundledPgApp(): Promise<AppBuild> {
  const build = await buildApp({
    fixture: 'next-bundled-pg',
    label: 'next',
    packages: { next: 'next', react: 'react', 'react-dom': 'react-dom', pg: 'pg', leakwatch: '.' },
    build: ['npm', 'run', 'build'],
    expect: ['.next/BUILD_ID'],
  });
  return announce('fixtures/next-bundled-pg with next', build);
}

/** fixtures/nest-app compiled by `tsc` (what `nest build` runs), for both of its adapters. */
export async function nestApp(): Promise<AppBuild> {
  const build = await buildApp({
    fixture: 'nest-app',
    label: 'nest',
    packages: {
      '@nestjs/common': '@nestjs/common',
      '@nestjs/core': '@nestjs/core',
      '@nestjs/platform-express': '@nestjs/platform-express',
      '@nestjs/platform-fastify': '@nestjs/platform-fastify',
      'reflect-metadata': 'reflect-metadata',
      rxjs: 'rxjs',
      pg: 'pg',
      ioredis: 'ioredis',
      typescript: 'typescript',
      '@types/node': '@types/node',
      '@types/pg': '@types/pg',
    },
    build: ['npm', 'run', 'build'],
    expect: ['dist/main.js'],
  });
  return announce('fixtures/nest-app', build);
}
