import type { ConnectionKind } from '../core/records.js';
import type { Report } from './json.js';

/** The kind of connection each library leakwatch follows makes. */
const KIND_OF: Readonly<Record<string, ConnectionKind>> = { pg: 'pg', ioredis: 'redis', redis: 'redis' };

/**
 * One warning line naming every process (a part of `leakwatch run`'s report, written by one
 * process) that loaded pg, ioredis or redis but in which leakwatch followed no connection of that
 * kind: either it made none, or leakwatch did not see them (a version it does not support), and
 * a report without leaks cannot tell which. Null when there is none. Counted by kind, so a
 * process that loaded both ioredis and redis is warned about only if neither was followed.
 */
export function unfollowedLibrariesWarning(parts: readonly Report[]): string | null {
  const missed: string[] = [];
  for (const part of parts) {
    for (const proc of part.processes ?? []) {
      const libraries = (proc.libraries ?? []).filter((library) => {
        const kind = KIND_OF[library];
        return kind !== undefined && (part.summary.connections?.[kind] ?? 0) === 0;
      });
      if (libraries.length === 0) continue;
      const command = proc.argv.join(' ');
      const shown = command === '' ? '' : ` (${command.length > 60 ? command.slice(0, 57) + '...' : command})`;
      missed.push(`process ${proc.pid}${shown} loaded ${libraries.join(' and ')}`);
    }
  }
  if (missed.length === 0) return null;
  return (
    `leakwatch: warning: ${missed.join('; ')}, but leakwatch followed none of ${missed.length === 1 ? 'its' : 'their'} connections: ` +
    'either none were made, or that version is not supported (see "Supported versions" in leakwatch\'s README).'
  );
}
