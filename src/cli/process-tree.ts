import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** pid, parent pid, process group and state of one process, as the system lists it. */
interface ProcessEntry {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
}

/** Fields of /proc/<pid>/stat after the command name, which may itself hold spaces and parentheses. */
function statFields(pid: number | 'self'): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

function listProcesses(): ProcessEntry[] | null {
  let names: string[] | null = null;
  try {
    names = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    // no /proc (macOS): ps, below
  }
  if (names !== null) {
    const entries: ProcessEntry[] = [];
    for (const name of names) {
      const fields = statFields(Number(name));
      if (fields !== null) entries.push({ pid: Number(name), state: fields[0], ppid: Number(fields[1]), pgid: Number(fields[2]) });
    }
    return entries;
  }
  const ps = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,pgid=,stat='], { encoding: 'utf8' });
  if (ps.status !== 0) return null;
  return ps.stdout
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .map(([pid, ppid, pgid, state]) => ({ pid: Number(pid), ppid: Number(ppid), pgid: Number(pgid), state: state ?? '' }));
}

/**
 * True when this process's group is the foreground group of its controlling terminal, i.e. the
 * terminal's Ctrl-C reaches it and every process in its group. Without /proc, a terminal on stdin
 * is taken as that.
 */
export function inTerminalForeground(): boolean {
  const fields = statFields('self');
  if (fields === null) return process.stdin.isTTY === true;
  const [pgrp, , ttyNr, tpgid] = fields.slice(2, 6).map(Number);
  return ttyNr !== 0 && tpgid === pgrp;
}

/** False when the process is gone or a zombie (exited, not yet reaped: it can write nothing more). */
export function isRunning(pid: number): boolean {
  const fields = statFields(pid);
  if (fields !== null) return fields[0] !== 'Z' && fields[0] !== 'X';
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `root` and every live process below it. */
export function processTree(root: number): number[] {
  const all = listProcesses();
  if (all === null) return [root];
  const children = new Map<number, number[]>();
  for (const entry of all) {
    if (entry.state === 'Z') continue;
    const list = children.get(entry.ppid) ?? [];
    list.push(entry.pid);
    children.set(entry.ppid, list);
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]) ?? []));
  return tree;
}

/**
 * Sends `signal` once to every process of the tree under `root`. With `group`, `root` leads its own
 * process group: the whole group gets it in one kill (no race with processes forked meanwhile),
 * and descendants that left the group get it one by one. Without, each process of the tree does.
 * Returns the processes signalled (as far as they could be listed).
 */
export function signalTree(root: number, signal: NodeJS.Signals, group: boolean): number[] {
  const kill = (pid: number) => {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  };
  let inGroup = new Set<number>();
  if (group) {
    kill(-root);
    const all = listProcesses() ?? [];
    inGroup = new Set(all.filter((entry) => entry.pgid === root).map((entry) => entry.pid));
  }
  const signalled = [...inGroup];
  for (const pid of processTree(root)) {
    if (pid === process.pid || inGroup.has(pid)) continue;
    kill(pid);
    signalled.push(pid);
  }
  return signalled;
}
