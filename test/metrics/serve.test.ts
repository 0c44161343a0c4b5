import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_SERVER_RESPONSES, MetricsPortError, serveMetrics, start, type Started } from '../../src/index.js';
import { OPENMETRICS_TEXT, getRuntime } from '../support/internals.js';
import { serveMetricsFromConfig } from '../../src/metrics/serve-from-config.js';
import { request } from '../support/http.js';
import { ROOT } from './support/dashboard.js';
import { start as startProcess } from './support/processes.js';
import { PROMETHEUS_ACCEPT, scrape, valueOf } from './support/scrape.js';
import { requireBuild } from './support/tools.js';

const logs: string[] = [];
let started: Started;
beforeAll(() => {
  started = start({ responseThreshold: 200, connectionThreshold: 200, log: (line) => logs.push(line) });
});
afterAll(() => started.stop());

async function occupyPort(): Promise<{ port: number; release(): Promise<void> }> {
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  return {
    port: (blocker.address() as net.AddressInfo).port,
    release: () => new Promise<void>((resolve) => blocker.close(() => resolve())),
  };
}

describe('serveMetrics({ port, host })', () => {
  it('serves the metrics at /metrics on 127.0.0.1, and nothing else', async () => {
    const server = await serveMetrics({ port: 0 });
    expect(server.address?.host).toBe('127.0.0.1');
    expect(server.url).toBe(`http://127.0.0.1:${server.address?.port}/metrics`);
    const app = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    await request((app.address() as net.AddressInfo).port, '/');
    const { status, contentType, body } = await scrape(server.url!, PROMETHEUS_ACCEPT);
    expect(status).toBe(200);
    expect(contentType).toBe(OPENMETRICS_TEXT);
    expect(valueOf(body, HTTP_SERVER_RESPONSES, { route: 'unmatched', outcome: 'finished' })).toBeGreaterThanOrEqual(1);
    expect((await scrape(server.url!.replace('/metrics', '/other'))).status).toBe(404);
    expect((await scrape(`${server.url}?debug=1`)).status).toBe(200);
    app.close();
    await server.close();
  });

  it('rejects with a MetricsPortError naming the port when another process has it', async () => {
    const taken = await occupyPort();
    const attempt = serveMetrics({ port: taken.port });
    await expect(attempt).rejects.toBeInstanceOf(MetricsPortError);
    await expect(attempt).rejects.toThrow(`metrics port ${taken.port} on 127.0.0.1 is taken`);
    await taken.release();
  });
});

describe('serveMetricsFromConfig(runtime), as leakwatch/register calls it', () => {
  it('logs a taken port and goes on', async () => {
    const taken = await occupyPort();
    const runtime = { ...getRuntime()!, config: { ...getRuntime()!.config, metricsPort: taken.port } };
    await expect(serveMetricsFromConfig(runtime)).resolves.toBeNull();
    expect(logs.some((line) => line.includes(`metrics port ${taken.port} on 127.0.0.1 is taken`) && line.includes('the app goes on'))).toBe(true);
    await taken.release();
  });
});

describe('node --import leakwatch/register with LEAKWATCH_METRICS_PORT', () => {
  let register: string;
  beforeAll(() => {
    register = requireBuild().register;
  });
  const app = path.join(ROOT, 'test/metrics/fixtures/short-app.mjs');

  it('serves the metrics, says where when the port is 0, and lets the app end by itself even while a scraper stays connected', async () => {
    const child = startProcess('short app', process.execPath, ['--import', register, app], { LEAKWATCH_METRICS_PORT: '0', LINGER_MS: '1500' });
    const url = await child.waitFor((line) => /metrics at (http:\S+)/.exec(line)?.[1]);
    const agent = new http.Agent({ keepAlive: true });
    const body = await new Promise<string>((resolve, reject) => {
      http
        .get(url, { agent, headers: { accept: PROMETHEUS_ACCEPT } }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    expect(body).toContain('# EOF');
    await child.waitFor((line) => (line === 'app ran' ? true : undefined));
    const exitedAt = Date.now();
    const code = await new Promise<number | null>((resolve) => child.process.once('exit', resolve));
    expect(code).toBe(0);
    expect(Date.now() - exitedAt).toBeLessThan(3500);
    agent.destroy();
  });

  it('logs a taken port and runs the app as usual', async () => {
    const taken = await occupyPort();
    const child = startProcess('short app', process.execPath, ['--import', register, app], { LEAKWATCH_METRICS_PORT: String(taken.port) });
    const code = await new Promise<number | null>((resolve) => child.process.once('exit', resolve));
    expect(code).toBe(0);
    expect(child.output).toContain('app ran');
    expect(child.output).toContain(`metrics port ${taken.port} on 127.0.0.1 is taken`);
    await taken.release();
  });

  it('says what to install when the app has no prom-client, and runs the app as usual', async () => {
    const hide = path.join(ROOT, 'test/metrics/fixtures/hide-prom-client.cjs');
    const child = startProcess('short app', process.execPath, ['--require', hide, '--import', register, app], { LEAKWATCH_METRICS_PORT: '0' });
    const code = await new Promise<number | null>((resolve) => child.process.once('exit', resolve));
    expect(code).toBe(0);
    expect(child.output).toContain('app ran');
    expect(child.output).toMatch(/leakwatch metrics need prom-client, which this app does not have: run `npm install prom-client`/);
    expect(child.output).not.toMatch(/\n\s+at /); // a sentence, not a stack trace
  });
});

describe('start({ metricsPort })', () => {
  it('serves the metrics on that port, once however often it is asked, until stop()', async () => {
    const lines: string[] = [];
    const running = start({ responseThreshold: 200, metricsPort: 0, log: (line) => lines.push(line) });
    const until = Date.now() + 3000;
    while (!lines.some((line) => line.startsWith('metrics at '))) {
      if (Date.now() > until) throw new Error(`no "metrics at" line: ${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const url = lines.find((line) => line.startsWith('metrics at '))!.slice('metrics at '.length);
    expect((await scrape(url)).status).toBe(200);
    const again = await serveMetricsFromConfig(getRuntime()!); // what leakwatch/register also calls
    expect(again?.url).toBe(url);
    running.stop();
    await new Promise((r) => setTimeout(r, 100));
    await expect(scrape(url)).rejects.toThrow(/ECONNREFUSED/);
  });
});
