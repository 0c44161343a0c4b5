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

/** `file:line:column` of the code that called `callee`; file URLs are shown as paths. */
export function callSite(callee: Function): string {
  const limit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  try {
    Error.stackTraceLimit = 1;
    Error.prepareStackTrace = (_error, callSites) => callSites;
    const capture: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(capture, callee);
    const site = capture.stack?.[0];
    if (site === undefined) return 'unknown';
    let file = site.getFileName() ?? site.getScriptNameOrSourceURL?.() ?? '<anonymous>';
    if (file.startsWith('file://')) file = decodeURIComponent(file.slice('file://'.length));
    return `${file}:${site.getLineNumber() ?? 0}:${site.getColumnNumber() ?? 0}`;
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}
