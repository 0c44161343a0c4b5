import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { findSourceMap, type SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
 * a plain map's relative sources to them), webpack's `webpack://<app>/./src/x.js`, which is
 * relative to the folder that holds the app's `.next`, and relative URLs, which Node leaves as they
 * are in the sections of an index map (Turbopack's chunks since Next.js 16.5:
 * `../../../app/api/%5Bid%5D/route.js`): relative to the map's own URL.
 */
function sourcePath(source: string, generated: string): string {
  if (source.startsWith('file://')) return fileURLToPath(source);
  const webpack = /^webpack:\/\/[^/]*\/(?:\.\/)?(.*)$/.exec(source);
  if (webpack !== null) {
    const app = generated.lastIndexOf(`${path.sep}.next${path.sep}`);
    return app < 0 ? webpack[1] : path.join(generated.slice(0, app), webpack[1]);
  }
  if (/^[a-z][a-z\d+.-]*:/i.test(source) || path.isAbsolute(source)) return source;
  try {
    return fileURLToPath(new URL(source, mapUrlOf(generated)));
  } catch {
    return source;
  }
}

/** The URL of each generated file's source map, once looked up. */
const mapUrls = new Map<string, URL>();
/** How much of a generated file's end is read for its `sourceMappingURL` comment. */
const TAIL_BYTES = 4096;

/**
 * Where a generated file's source map is: the URL its last `sourceMappingURL` comment gives,
 * relative to the file; the file's own URL when the map is inline or the comment is not found.
 */
function mapUrlOf(generated: string): URL {
  let url = mapUrls.get(generated);
  if (url !== undefined) return url;
  url = pathToFileURL(generated);
  const reference = /^[^\s'"]+/.exec(lastMappingUrl(generated) ?? '')?.[0];
  if (reference !== undefined && !reference.startsWith('data:')) {
    try {
      url = new URL(reference, url);
    } catch {
      // not a URL: the file's own stands
    }
  }
  mapUrls.set(generated, url);
  return url;
}

/** The text after the last `sourceMappingURL=` in the end of `file`; null if there is none or it cannot be read. */
function lastMappingUrl(file: string): string | null {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const length = Math.min(size, TAIL_BYTES);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const tail = buffer.toString('utf8');
    const at = tail.lastIndexOf('sourceMappingURL=');
    return at < 0 ? null : tail.slice(at + 'sourceMappingURL='.length);
  } catch {
    return null;
  } finally {
    if (fd !== undefined) closeQuietly(fd);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already gone: nothing to keep open
  }
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
