import path from 'node:path';
import type { StackCapture } from './records.js';

/**
 * Cheap stack capture: V8 collects the frames now and formats them only if `stack` is read, which
 * leakwatch does only when it reports a leak.
 */
export function captureStack(frames: number, below: Function): StackCapture | null {
  if (frames <= 0) return null;
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = frames;
    const capture: { stack?: string } = {};
    Error.captureStackTrace(capture, below);
    return capture;
  } finally {
    Error.stackTraceLimit = limit;
  }
}

// leakwatch's own code, wherever the package is installed (this file is <root>/src/core or <root>/dist/core).
const OWN_ROOT = path.resolve(__dirname, '../..');
const OWN_DIRS = [path.join(OWN_ROOT, 'dist') + path.sep, path.join(OWN_ROOT, 'src') + path.sep];
const OWN_FRAME = /[\\/]leakwatch[\\/](?:dist|src)[\\/]|node:internal[\\/]/;
const LIBRARY_FRAME = /[\\/]node_modules[\\/]/;

/** Whose code a frame of a formatted stack (`at …`) is in. */
export type FrameKind = 'app' | 'library' | 'leakwatch' | 'node';

/** `file:line:column` of an `at …` line (an `at async …` one too); file URLs are shown as paths. */
function locationOf(frame: string): string | null {
  const match = /\(?((?:file:\/\/)?[^()]*?:\d+:\d+)\)?\s*$/.exec(frame.trim());
  if (match === null) return null;
  let where = match[1].replace(/^at (?:async )?/, '');
  if (where.startsWith('file://')) where = decodeURIComponent(where.slice('file://'.length));
  return where;
}

export function frameKind(frame: string): FrameKind {
  const where = locationOf(frame);
  if (where === null || where.startsWith('node:') || !/[\\/]/.test(where)) return 'node'; // `<anonymous>`, `native`, builtins
  if (OWN_FRAME.test(frame) || OWN_DIRS.some((dir) => where.startsWith(dir))) return 'leakwatch';
  return LIBRARY_FRAME.test(where) ? 'library' : 'app';
}

function framesOf(capture: StackCapture | null): string[] {
  const text = capture?.stack;
  if (typeof text !== 'string') return [];
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '));
}

/**
 * The captured frames as `at …` lines, V8's `at async …` frames included, leakwatch's own and
 * Node's internal frames left out; library frames stay.
 */
export function formatStack(capture: StackCapture | null): string | null {
  if (capture === null) return null;
  const text = capture.stack;
  if (typeof text !== 'string') return null;
  const lines = framesOf(capture);
  const shown = lines.filter((line) => frameKind(line) !== 'leakwatch' && !line.includes('node:internal'));
  return (shown.length > 0 ? shown : text.split('\n').slice(1).map((line) => line.trim())).join('\n');
}

/**
 * `file:line:column` of the first frame in the application's own code (outside node_modules,
 * leakwatch and Node's internals), following V8's async frames past the library's; null when the
 * capture holds none (the library called back from a queue, or the stack was cut short).
 */
export function appSiteOf(capture: StackCapture | null): string | null {
  for (const frame of framesOf(capture)) if (frameKind(frame) === 'app') return locationOf(frame);
  return null;
}

/**
 * `file:line:column` of the first frame of a capture; file URLs are shown as paths. It reads the
 * formatted stack, so source maps installed by the app or its test runner apply.
 */
export function siteOf(capture: StackCapture | null): string {
  const frame = capture?.stack?.split('\n').find((line) => line.trimStart().startsWith('at '));
  if (frame === undefined) return 'unknown';
  return locationOf(frame) ?? frame.trim().slice(3);
}
