import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, runCommand } from '../support/cli.js';

/**
 * The holders signal: off unless asked for (Node's default for SIGUSR2 is to end the process, and
 * tools rely on it), and when asked for, the snapshot goes to the log and the process runs on.
 */

// Calls start() with START_OPTIONS, says "ready", sends itself nothing; stops leakwatch after
// STOP_AFTER_MS when set ("stopped"), and ends by itself after 1 s.
const APP = `
const { start } = require(${JSON.stringify(path.join(ROOT, 'dist/index.js'))});
const started = start(JSON.parse(process.env.START_OPTIONS || '{}'));
process.stdout.write('ready\\n');
if (process.env.STOP_AFTER_MS) setTimeout(() => { started.stop(); process.stdout.write('stopped\\n'); }, Number(process.env.STOP_AFTER_MS));
setTimeout(() => process.exit(0), 1000);
`;

/** Runs the app and sends it SIGUSR2 once it has printed `when`. */
function runAndSignal(options: object, when: string, env: NodeJS.ProcessEnv = {}) {
  const clean: NodeJS.ProcessEnv = { ...process.env };
  for (const key of Object.keys(clean)) if (key.startsWith('LEAKWATCH_') || key === 'NODE_OPTIONS') delete clean[key];
  let sent = false;
  return runCommand(process.execPath, ['-e', APP], {
    env: { ...clean, START_OPTIONS: JSON.stringify(options), ...env },
    timeoutMs: 15_000,
    onStdout: (stdout, child) => {
      if (!sent && stdout.includes(when)) {
        sent = true;
        child.kill('SIGUSR2');
      }
    },
  });
}

describe('holdersSignal', () => {
  describe('when it is not set', () => {
    it('installs no listener: SIGUSR2 ends the process as it would without leakwatch', async () => {
      const exit = await runAndSignal({}, 'ready');
      expect(exit.signal).toBe('SIGUSR2');
      expect(exit.stderr).toBe('');
    });
  });

  describe('when it is SIGUSR2', () => {
    it('writes the holders table to the log on SIGUSR2, and the process runs on', async () => {
      const exit = await runAndSignal({ holdersSignal: 'SIGUSR2' }, 'ready');
      expect(exit.signal).toBeNull();
      expect(exit.status).toBe(0);
      expect(exit.stderr).toMatch(/^\[leakwatch\] leakwatch holders of pid \d+ at \d{4}-\d\d-\d\dT[\d:.]+Z: no connection held, no checkout waiting\n$/);
    });

    it('writes one JSON object when the leak log is json (LEAKWATCH_HOLDERS_SIGNAL, LEAKWATCH_LOG)', async () => {
      const exit = await runAndSignal({}, 'ready', { LEAKWATCH_HOLDERS_SIGNAL: 'SIGUSR2', LEAKWATCH_LOG: 'json' });
      expect(exit.status).toBe(0);
      const lines = exit.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0])).toMatchObject({ level: 'info', logger: 'leakwatch', event: 'holders', msg: 'holders on SIGUSR2', pid: expect.any(Number), pools: [] });
    });

    it('takes its listener away at stop(): SIGUSR2 ends the process again', async () => {
      const exit = await runAndSignal({ holdersSignal: 'SIGUSR2' }, 'stopped', { STOP_AFTER_MS: '50' });
      expect(exit.signal).toBe('SIGUSR2');
      expect(exit.stderr).toBe('');
    });
  });
});
