import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { start, type Child } from './processes.js';
import { freePort, requireBinary } from './tools.js';

/** A real Prometheus on a free loopback port, with a throwaway data directory. */

export interface ScrapeJob {
  name: string;
  target: string;
}

export interface PromSample {
  metric: Record<string, string>;
  value?: [number, string];
  values?: Array<[number, string]>;
}

export class Prometheus {
  private constructor(
    readonly url: string,
    private readonly child: Child,
    private readonly dir: string,
  ) {}

  static async start(jobs: ScrapeJob[], ruleFiles: string[]): Promise<Prometheus> {
    const binary = requireBinary('prometheus');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'leakwatch-prometheus-'));
    const config = [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      ...ruleFiles.map((file) => `  - ${JSON.stringify(file)}`),
      'scrape_configs:',
      ...jobs.flatMap((job) => [`  - job_name: ${JSON.stringify(job.name)}`, '    static_configs:', `      - targets: [${JSON.stringify(job.target)}]`]),
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), `${config}\n`);
    const port = await freePort();
    const child = start('prometheus', binary, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--enable-feature=exemplar-storage',
      '--log.level=warn',
    ]);
    const prometheus = new Prometheus(`http://127.0.0.1:${port}`, child, dir);
    await prometheus.waitUntilReady();
    return prometheus;
  }

  get output(): string {
    return this.child.output;
  }

  private async waitUntilReady(): Promise<void> {
    const until = Date.now() + 15_000;
    for (;;) {
      try {
        const response = await fetch(`${this.url}/-/ready`);
        if (response.ok) return;
      } catch {
        // not listening yet
      }
      if (this.child.process.exitCode !== null) throw new Error(`prometheus exited:\n${this.child.output}`);
      if (Date.now() > until) throw new Error(`prometheus was not ready within 15 s:\n${this.child.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async api<T>(endpoint: string, params: Record<string, string | string[]> = {}): Promise<T> {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) for (const v of [value].flat()) search.append(key, v);
    const response = await fetch(`${this.url}/api/v1/${endpoint}?${search}`);
    const body = (await response.json()) as { status: string; data: T; error?: string };
    if (body.status !== 'success') throw new Error(`${endpoint} ${JSON.stringify(params)}: ${body.error ?? response.status}`);
    return body.data;
  }

  async query(expr: string): Promise<PromSample[]> {
    return (await this.api<{ result: PromSample[] }>('query', { query: expr })).result;
  }

  async queryRange(expr: string, seconds: number): Promise<PromSample[]> {
    const end = Date.now() / 1000;
    return (await this.api<{ result: PromSample[] }>('query_range', { query: expr, start: String(end - seconds), end: String(end), step: '1' })).result;
  }

  /** The value of a query returning one sample, or null when it returns none. */
  async value(expr: string): Promise<number | null> {
    const result = await this.query(expr);
    return result.length === 0 ? null : Number(result[0].value?.[1]);
  }

  /**
   * Polls `check` until it holds. `seen`, when given, says what the last check read, for the
   * timeout's message: a count that never reached its value is then named with the one it had.
   */
  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 20_000, seen?: () => string): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > until) {
        const last = seen === undefined ? '' : `; last read: ${seen()}`;
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last}; prometheus says:\n${this.child.output}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    await this.child.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
