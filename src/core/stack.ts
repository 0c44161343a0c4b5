import { findSourceMap, type SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
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

/** leakwatch's own frames, and Node's (`node:internal/…`, `node:diagnostics_channel`, …): never shown. */
const HIDDEN_FRAME = /[\\/]leakwatch[\\/](?:dist|src)[\\/]|\(node:|^at node:/;

/**
 * Frames of code that is not the app's: packages (node_modules, also as a bundle's source map
 * names them), Next.js's own code, and the module runtime a Next build puts beside the app's
 * chunks (Turbopack's `[turbopack]_runtime.js`, webpack's `webpack-runtime.js`).
 */
const LIBRARY_FRAME = /[\\/]node_modules[\\/]|[\\/]next[\\/]dist[\\/]|[\\/]\.next[\\/]server[\\/](?:chunks[\\/](?:ssr[\\/])?\[turbopack\]_runtime\.js|webpack-(?:api-)?runtime\.js)/;

/** A frame of the app's own code: a file of its own, not a library's, Next's, or Node's. */
export function isAppFrame(frame: string): boolean {
  return !LIBRARY_FRAME.test(frame) && !HIDDEN_FRAME.test(frame) && /:\d+:\d+\)?$/.test(frame);
}

const FRAME = /^at (?:(.+?) \()?(.+?):(\d+):(\d+)\)?$/;

/**
 * The source file a source map names, as a path where it can be one: `file:` URLs (Node resolves
 * relative sources to them) and webpack's `webpack://<app>/./src/x.js`, which is relative to the
 * folder that holds the app's `.next`.
 */
function sourcePath(source: string, generated: string): string {
  if (source.startsWith('file://')) return fileURLToPath(source);
  const webpack = /^webpack:\/\/[^/]*\/(?:\.\/)?(.*)$/.exec(source);
  if (webpack !== null) {
    const app = generated.lastIndexOf(`${path.sep}.next${path.sep}`);
    return app < 0 ? webpack[1] : path.join(generated.slice(0, app), webpack[1]);
  }
  return source;
}

function sourceMapOf(file: string): SourceMap | undefined {
  try {
    return findSourceMap(file);
  } catch {
    return undefined;
  }
}

/**
 * The frame as the source says, when the process has the generated file's source map loaded
 * (`--enable-source-maps`, or `process.setSourceMapsEnabled(true)` before the file loaded). Read
 * here rather than left to Node: a framework's own `Error.prepareStackTrace` (Next.js has one)
 * formats stacks unmapped, and so do stacks captured before the app turned source maps on.
 */
function mapFrame(frame: string): string {
  const match = FRAME.exec(frame);
  if (match === null) return frame;
  const [, name, file, line, column] = match;
  // A library's frames stay as installed: they are not what a report is read for, and their maps
  // (Next's runtime has some of megabytes) are not worth reading.
  if (file.startsWith('node:') || LIBRARY_FRAME.test(file)) return frame;
  const origin = sourceMapOf(file)?.findOrigin(Number(line), Number(column));
  if (origin === undefined || !('fileName' in origin)) return frame;
  const where = `${sourcePath(origin.fileName, file.startsWith('file://') ? fileURLToPath(file) : file)}:${origin.lineNumber}:${origin.columnNumber}`;
  return name === undefined ? `at ${where}` : `at ${name} (${where})`;
}

/** The frames of a capture as `at …` lines, mapped to their source where the app has source maps on. */
function framesOf(capture: StackCapture | null): string[] | null {
  const text = capture?.stack;
  if (typeof text !== 'string') return null;
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '))
    .map(mapFrame);
}

/**
 * The captured frames as `at …` lines, leakwatch's own and Node's left out, each mapped to its
 * source file where the app runs with source maps. Library frames stay (see {@link isAppFrame}).
 */
export function formatStack(capture: StackCapture | null): string | null {
  const frames = framesOf(capture);
  const shown = frames?.filter((line) => !HIDDEN_FRAME.test(line));
  return shown === undefined || shown.length === 0 ? null : shown.join('\n');
}

/**
 * `file:line:column` of the first frame of a capture (mapped to its source where the app has
 * source maps on); file URLs are shown as paths.
 */
export function siteOf(capture: StackCapture | null): string {
  const frame = framesOf(capture)?.[0];
  if (frame === undefined) return 'unknown';
  const match = /\(?((?:file:\/\/)?[^()]*?:\d+:\d+)\)?\s*$/.exec(frame);
  let where = match ? match[1] : frame.slice(3);
  if (where.startsWith('file://')) where = decodeURIComponent(where.slice('file://'.length));
  return where;
}
