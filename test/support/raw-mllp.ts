/** Raw MLLP connections for the hostile-sender cases: bytes written as given, the close observed. */
import { connect, type Socket } from 'node:net';

export interface RawConnection {
  readonly socket: Socket;
  /** Whether the gateway closed it (or it was reset). */
  readonly closed: boolean;
  /** Resolves when it closes. */
  readonly whenClosed: Promise<void>;
  /** Writes, ignoring a connection the gateway has closed meanwhile; resolves once handed to the kernel. */
  write(bytes: Buffer | string): Promise<void>;
  destroy(): void;
}

export async function rawConnection(port: number): Promise<RawConnection> {
  const socket = connect({ host: '127.0.0.1', port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let closed = false;
  socket.on('error', () => undefined);
  socket.resume();
  const whenClosed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  return {
    socket,
    get closed() {
      return closed;
    },
    whenClosed,
    write: (bytes) =>
      new Promise<void>((resolve) => {
        if (closed || socket.destroyed) {
          resolve();
          return;
        }
        socket.write(bytes, () => resolve());
      }),
    destroy: () => socket.destroy(),
  };
}
