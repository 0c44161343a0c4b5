import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installedFolder } from '../../support/installed-folder.js';

/**
 * The agents the tests run beside live in packages of their own under test/agents/, one per Node
 * line, each with its own lockfile: current OpenTelemetry (0.30x) needs Node ≥ 22.15, and the
 * newest that Node 20 runs is 0.223; dd-trace 6 needs Node 22. The folder a line needs is
 * installed by installedFolder() (test/support/installed-folder.ts) the first time a test asks.
 */

const [major, minor] = process.versions.node.split('.').map(Number);
/** True where current OpenTelemetry runs (Node ≥ 22.15): the folder `node24`; else `node20`. */
export const CURRENT_RELEASES = major > 22 || (major === 22 && minor >= 15);
export const LINE = CURRENT_RELEASES ? 'node24' : 'node20';
export const NODE_LINE = `Node ${process.versions.node}`;

const AGENTS = fileURLToPath(new URL('..', import.meta.url));

export interface AgentPackages {
  dir: string;
  versions: Record<string, string>;
}

/** The agents' folder for this Node line, installed if it is not (or its lockfile changed). */
export async function agentPackages(): Promise<AgentPackages> {
  const dir = path.join(AGENTS, LINE);
  return { dir, versions: await installedFolder(dir) };
}
