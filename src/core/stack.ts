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

const OWN_FRAME = /[\\/]leakwatch[\\/](?:dist|src)[\\/]|node:internal[\\/]/;

/** The captured frames as `at …` lines, leakwatch's own and Node's internal frames left out. */
export function formatStack(capture: StackCapture | null): string | null {
  if (capture === null) return null;
  const text = capture.stack;
  if (typeof text !== 'string') return null;
  const lines = text.split('\n').slice(1).map((line) => line.trim());
  const app = lines.filter((line) => line.startsWith('at ') && !OWN_FRAME.test(line));
  return (app.length > 0 ? app : lines).join('\n');
}

/**
 * `file:line:column` of the first frame of a capture; file URLs are shown as paths. It reads the
 * formatted stack, so source maps installed by the app or its test runner apply.
 */
export function siteOf(capture: StackCapture | null): string {
  const frame = capture?.stack?.split('\n').find((line) => line.trimStart().startsWith('at '));
  if (frame === undefined) return 'unknown';
  const match = /\(?((?:file:\/\/)?[^()]*?:\d+:\d+)\)?\s*$/.exec(frame.trim());
  let where = match ? match[1] : frame.trim().slice(3);
  if (where.startsWith('file://')) where = decodeURIComponent(where.slice('file://'.length));
  return where;
}
