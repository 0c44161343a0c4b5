import net from 'node:net';
import tls from 'node:tls';

/**
 * A connection of leakwatch's own to a Redis server, speaking just enough RESP2 for `CLIENT LIST`:
 * commands out as arrays of bulk strings, replies in as simple strings, errors, integers, bulk
 * strings and arrays.
 *
 * It is not the app's Redis class on purpose: every agent wraps that class's methods (OpenTelemetry
 * and dd-trace trace `sendCommand`, patchers count it), so a lookup made with it would show up as
 * a command of the app's. This one is plain `net`/`tls`, its socket unref'd (it never keeps the
 * process alive), every command bounded by a timeout.
 */

export interface RespEndpoint {
  host: string;
  port: number;
  /** ioredis's `tls` option as the app gave it (`tls.connect` options); absent for plain TCP. */
  tls?: tls.ConnectionOptions | null;
  /** The name the app connects to, for the TLS server name when `host` is an address. */
  servername?: string;
  username?: string;
  password?: string;
  /** Set with `CLIENT SETNAME` so that whoever reads CLIENT LIST knows whose connection it is. */
  clientName: string;
  timeoutMs: number;
}

export type RespReply = string | number | null | RespReply[];

/** An error reply of the server (`-ERR …`, `-NOAUTH …`, `-WRONGPASS …`). */
export class RespReplyError extends Error {}

interface Pending {
  resolve(reply: RespReply): void;
  reject(error: Error): void;
}

const CRLF = '\r\n';

function encode(args: readonly string[]): string {
  let out = `*${args.length}${CRLF}`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}${CRLF}${arg}${CRLF}`;
  return out;
}

/** One reply read from `buffer` at `offset`, and where the next starts; null when it is not all there yet. */
export function parseReply(buffer: Buffer, offset: number): { reply: RespReply | RespReplyError; next: number } | null {
  if (offset >= buffer.length) return null;
  const lineEnd = buffer.indexOf(CRLF, offset);
  if (lineEnd < 0) return null;
  const type = String.fromCharCode(buffer[offset]);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  switch (type) {
    case '+':
      return { reply: line, next: afterLine };
    case '-':
      return { reply: new RespReplyError(line), next: afterLine };
    case ':':
      return { reply: Number(line), next: afterLine };
    case '$': {
      const length = Number(line);
      if (length < 0) return { reply: null, next: afterLine };
      if (buffer.length < afterLine + length + 2) return null;
      return { reply: buffer.toString('utf8', afterLine, afterLine + length), next: afterLine + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { reply: null, next: afterLine };
      const items: RespReply[] = [];
      let next = afterLine;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, next);
        if (item === null) return null;
        if (item.reply instanceof RespReplyError) return item; // an error inside: the whole reply fails
        items.push(item.reply);
        next = item.next;
      }
      return { reply: items, next };
    }
    default:
      throw new Error(`unexpected RESP reply type ${JSON.stringify(type)}`);
  }
}

export class RespConnection {
  private socket: net.Socket | null = null;
  private readonly pending: Pending[] = [];
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly endpoint: RespEndpoint) {}

  /** Sends one command; resolves with its reply, rejects with the server's error or a lost connection. */
  command(...args: string[]): Promise<RespReply> {
    return new Promise<RespReply>((resolve, reject) => {
      try {
        const socket = this.socket ?? this.open();
        this.pending.push({ resolve, reject });
        socket.setTimeout(this.endpoint.timeoutMs);
        socket.write(encode(args));
      } catch (error) {
        reject(error as Error);
      }
    });
  }

  close(): void {
    this.socket?.destroy();
  }

  private open(): net.Socket {
    const { host, port, servername, username, password, clientName } = this.endpoint;
    const socket =
      this.endpoint.tls != null
        ? tls.connect({ ...this.endpoint.tls, host, port, servername: this.endpoint.tls.servername ?? servername })
        : net.connect({ host, port });
    this.socket = socket;
    socket.unref();
    socket.setNoDelay(true);
    socket.setTimeout(this.endpoint.timeoutMs);
    socket.on('data', (chunk: Buffer) => this.received(socket, chunk));
    socket.on('timeout', () => socket.destroy(new Error(`no answer from Redis at ${host}:${port} in ${this.endpoint.timeoutMs} ms`)));
    socket.on('error', (error) => this.lost(socket, error));
    socket.on('close', () => this.lost(socket, new Error(`the connection to Redis at ${host}:${port} closed`)));
    // Written ahead of the first command; their replies come first, and an AUTH that fails makes the command fail too.
    const hello: string[][] = [];
    if (password !== undefined && password !== '') hello.push(username ? ['AUTH', username, password] : ['AUTH', password]);
    hello.push(['CLIENT', 'SETNAME', clientName]);
    for (const args of hello) {
      this.pending.push({ resolve: () => {}, reject: () => {} });
      socket.write(encode(args));
    }
    return socket;
  }

  private received(socket: net.Socket, chunk: Buffer): void {
    if (socket !== this.socket) return;
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let offset = 0;
    try {
      for (let parsed = parseReply(this.buffer, offset); parsed !== null; parsed = parseReply(this.buffer, offset)) {
        offset = parsed.next;
        const waiter = this.pending.shift();
        if (parsed.reply instanceof RespReplyError) waiter?.reject(parsed.reply);
        else waiter?.resolve(parsed.reply);
      }
    } catch (error) {
      socket.destroy(error as Error);
      return;
    }
    this.buffer = offset === this.buffer.length ? Buffer.alloc(0) : this.buffer.subarray(offset);
    if (this.pending.length === 0) socket.setTimeout(0);
  }

  private lost(socket: net.Socket, error: Error): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    for (const waiter of this.pending.splice(0)) waiter.reject(error);
  }
}
