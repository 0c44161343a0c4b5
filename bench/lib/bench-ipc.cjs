// The server side of lib/http-bench.mjs's protocol over fork() IPC: 'start' and 'stop' measure the
// CPU the server process spends in between (and its main thread's, where process.threadCpuUsage
// exists: Node ≥ 23.9), 'exit' closes the server (then `close()`) and exits,
// and any other message is answered by `extra[message]()`. CommonJS, so .cjs servers can require it.
exports.answerBench = function answerBench(server, { close = async () => {}, extra = {} } = {}) {
  let cpuAtStart = null;
  let threadAtStart;
  const threadCpu = typeof process.threadCpuUsage === 'function' ? () => process.threadCpuUsage() : () => undefined;
  process.on('message', (message) => {
    if (message === 'start') {
      cpuAtStart = process.cpuUsage();
      threadAtStart = threadCpu();
      process.send({ started: true });
    } else if (message === 'stop') {
      const used = process.cpuUsage(cpuAtStart);
      const thread = threadAtStart === undefined ? undefined : process.threadCpuUsage(threadAtStart);
      process.send({ cpuUs: used.user + used.system, threadUs: thread === undefined ? undefined : thread.user + thread.system, heapUsed: process.memoryUsage().heapUsed });
    } else if (message === 'exit') {
      server.closeAllConnections();
      server.close(() => Promise.resolve(close()).then(() => process.exit(0)));
    } else if (typeof extra[message] === 'function') {
      process.send(extra[message]());
    }
  });
};
