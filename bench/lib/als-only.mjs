// Reference mode for bench/realistic.bench.mjs: only what carrying a per-request async context
// costs on this Node. It enters an AsyncLocalStorage store per request from the same
// diagnostics channel leakwatch uses, and nothing else. On Node 20 that turns on async_hooks with
// promise hooks for the whole process, the floor for any tool that must know, after an await,
// which request it is in (leakwatch, OpenTelemetry, APMs).
import { AsyncLocalStorage } from 'node:async_hooks';
import diagnostics_channel from 'node:diagnostics_channel';

const context = new AsyncLocalStorage();
diagnostics_channel.subscribe('http.server.request.start', (message) => context.enterWith({ response: message.response }));
