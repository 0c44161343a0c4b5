import http from 'node:http';

/** Reading an exposition over HTTP, and the samples in it. */

export const PROMETHEUS_ACCEPT =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

export interface Scraped {
  status: number;
  contentType: string;
  body: string;
}

export function scrape(url: string, accept?: string, method = 'GET'): Promise<Scraped> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: accept === undefined ? {} : { accept }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  exemplar: string | null;
}

/** The samples of an exposition in either format (comments skipped). */
export function samples(body: string): Sample[] {
  const out: Sample[] = [];
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*?)\})? (\S+)(?: # (.*))?$/.exec(line);
    if (match === null) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    out.push({ name: match[1], labels, value: Number(match[3]), exemplar: match[4] ?? null });
  }
  return out;
}

/** Samples named `name` whose labels include `labels`. */
export function find(body: string, name: string, labels: Record<string, string> = {}): Sample[] {
  return samples(body).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one value of `name` with `labels`, or undefined when there is no such sample. */
export function valueOf(body: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const found = find(body, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}
