import net from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { socketBytesWritten } from '../../src/http/node-http.js';

/** Makes `socket.bytesWritten` throw on this socket: the reading must then come without it. */
function withoutGetter<T>(socket: net.Socket, read: () => T): T {
  Object.defineProperty(socket, 'bytesWritten', { configurable: true, get: () => { throw new Error('bytesWritten read'); } });
  try {
    return read();
  } finally {
    delete (socket as { bytesWritten?: unknown }).bytesWritten;
  }
}

describe('socketBytesWritten', () => {
  it('says what socket.bytesWritten says, pending, buffered, in flight and settled, and skips the getter only when nothing is waiting', async () => {
    const peers: net.Socket[] = [];
    const server = net.createServer((peer) => {
      peers.push(peer);
      peer.pause(); // reads nothing until told: writes back up
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');

    socket.write('before the connection'); // held as pending data until connected
    expect(socket.bytesWritten).toBeGreaterThan(0);
    expect(socketBytesWritten(socket)).toBe(socket.bytesWritten);
    await once(socket, 'connect');
    await new Promise<void>((resolve) => socket.write('x', () => resolve()));

    // Settled: nothing buffered, in flight or pending. The count comes without the getter.
    const settled = socket.bytesWritten;
    expect(settled).toBe('before the connection'.length + 1);
    expect(withoutGetter(socket, () => socketBytesWritten(socket))).toBe(settled);

    socket.cork();
    socket.write('buffered');
    expect(socket.writableLength).toBe('buffered'.length);
    expect(socketBytesWritten(socket)).toBe(socket.bytesWritten);
    expect(socketBytesWritten(socket)).toBe(settled + 'buffered'.length);
    socket.uncork();

    // More than the peer's and the kernel's buffers take while the peer reads nothing: in flight and buffered.
    const chunk = Buffer.alloc(1 << 20);
    for (let i = 0; i < 16 && socket.write(chunk); i++);
    expect(socket.writableLength).toBeGreaterThan(0);
    expect(socketBytesWritten(socket)).toBe(socket.bytesWritten);

    peers[0].resume();
    if (socket.writableLength > 0) await once(socket, 'drain');
    expect(socket.writableLength).toBe(0);
    expect(withoutGetter(socket, () => socketBytesWritten(socket))).toBe(socket.bytesWritten);

    socket.destroy();
    for (const peer of peers) peer.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});
