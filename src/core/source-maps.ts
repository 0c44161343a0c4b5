import { findSourceMap, type SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Frames of generated code (compiled TypeScript, a Next.js bundle) as their source says, read from
 * the source maps the process has loaded (`--enable-source-maps`, or
 * `process.setSourceMapsEnabled(true)` before the code loaded). leakwatch maps frames itself rather
 * than leave it to Node: a framework's own `Error.prepareStackTrace` (Next.js installs one) formats
 * stacks unmapped whatever the flag says.
 */

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
 * An `at …` line as the source says, when the process has the generated file's source map; else
 * the line as it is. `skip(file)` keeps frames as they are (a library's: their maps, Next's runtime
 * has some of megabytes, are not worth reading for frames a report collapses).
 */
export function mapFrame(frame: string, skip: (file: string) => boolean): string {
  const match = FRAME.exec(frame);
  if (match === null) return frame;
  const [, name, file, line, column] = match;
  if (file.startsWith('node:') || skip(file)) return frame;
  const origin = sourceMapOf(file)?.findOrigin(Number(line), Number(column));
  if (origin === undefined || !('fileName' in origin)) return frame;
  const generated = file.startsWith('file://') ? fileURLToPath(file) : file;
  const where = `${sourcePath(origin.fileName, generated)}:${origin.lineNumber}:${origin.columnNumber}`;
  return name === undefined ? `at ${where}` : `at ${name} (${where})`;
}
