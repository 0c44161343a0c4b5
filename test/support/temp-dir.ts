/**
 * vitest globalSetup, first of them: one temporary directory for the whole run, given to every
 * test process (and what each starts) as TMPDIR, and removed at the end, whatever the tests left in
 * it. Many tests make scratch directories (installed packages, reports, apps, sockets) with
 * `mkdtemp(os.tmpdir())`; without this, each run left about 60 of them in /tmp, some 11 MB each.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'leakwatch-tests-'));
  // Open as /tmp is: other users reach into it (the embedded PostgreSQL's initdb runs as `postgres`
  // when the tests run as root).
  chmodSync(dir, 0o1777);
  process.env.TMPDIR = dir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };
}
