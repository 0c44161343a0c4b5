import net from 'node:net';
import tls from 'node:tls';

/**
 * A Redis server as leakwatch's own lookup connection reaches it. The credentials are kept only to
 * authenticate that connection; they are never part of a name, a key or a message.
 */
export interface RedisEndpoint {
  host: string;
  port: number;
  /** `tls.connect()` options when the app's client uses TLS (its servername included); null for plain TCP. */
  tls: tls.ConnectionOptions | null;
  username?: string;
  password?: string;
}

/** Encodes a command as a RESP array of bulk strings. */
function encode(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`;
  return out;
}

type Reply = string | number | null | Error;

/** One reply at `offset` of `buffer`, or undefined when it has not all arrived. Arrays are not expected. */
function parseReply(buffer: Buffer, offset: number): { reply: Reply; next: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  switch (buffer[offset]) {
    case 0x2b: // +
      return { reply: line, next: lineEnd + 2 };
    case 0x2d: // -
      return { reply: new Error(line), next: lineEnd + 2 };
    case 0x3a: // :
      return { reply: Number(line), next: lineEnd + 2 };
    case 0x24: {
      // $
      const length = Number(line);
      if (length < 0) return { reply: null, next: lineEnd + 2 };
      const end = lineEnd + 2 + length;
      if (buffer.length < end + 2) return undefined;
      return { reply: buffer.toString('utf8', lineEnd + 2, end), next: end + 2 };
    }
    default:
      return { reply: new Error('unexpected reply from the server'), next: buffer.length };
  }
}

/**
 * `CLIENT LIST` of a server, read on a connection of leakwatch's own made for this one call (named
 * `leakwatch`, unref'd, closed after the reply): a tiny RESP client, so that finding the app's
 * connections never uses or counts one of the app's Redis clients, whichever library it uses.
 * Rejects on a connection error, an error reply (NOAUTH …) or after `timeoutMs`.
 */
export function readClientList(endpoint: RedisEndpoint, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const commands: string[][] = [];
    if (endpoint.password !== undefined && endpoint.password !== '') {
      commands.push(endpoint.username ? ['AUTH', endpoint.username, endpoint.password] : ['AUTH', endpoint.password]);
    }
    commands.push(['CLIENT', 'SETNAME', 'leakwatch'], ['CLIENT', 'LIST']);
    const socket =
      endpoint.tls === null
        ? net.connect({ host: endpoint.host, port: endpoint.port })
        : tls.connect({ ...endpoint.tls, host: endpoint.host, port: endpoint.port });
    socket.unref();
    socket.setTimeout(timeoutMs);
    let received: Buffer = Buffer.alloc(0);
    const replies: Reply[] = [];
    let done = false;
    const finish = (error: Error | null, text?: string) => {
      if (done) return;
      done = true;
      socket.destroy();
      if (error !== null) reject(error);
      else resolve(text ?? '');
    };
    socket.on('timeout', () => finish(new Error(`CLIENT LIST got no reply within ${timeoutMs} ms`)));
    socket.on('error', (error) => finish(error));
    socket.on('close', () => finish(new Error('the server closed the connection before CLIENT LIST replied')));
    socket.on('data', (chunk: Buffer) => {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
      let offset = 0;
      for (let parsed = parseReply(received, offset); parsed !== undefined; parsed = parseReply(received, offset)) {
        replies.push(parsed.reply);
        offset = parsed.next;
        if (replies.length === commands.length) {
          const failed = replies.find((reply): reply is Error => reply instanceof Error);
          const list = replies[replies.length - 1];
          return finish(failed ?? (typeof list === 'string' ? null : new Error('CLIENT LIST gave no text')), typeof list === 'string' ? list : undefined);
        }
        if (offset >= received.length) break;
      }
      received = received.subarray(offset);
    });
    socket.write(commands.map(encode).join(''));
  });
}
