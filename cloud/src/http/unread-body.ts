import type { IncomingMessage } from 'node:http';

/**
 * Bytes of a refused request's body the cloud still reads, and throws away,
 * to keep the connection usable; a body with more left than this closes the
 * connection instead (the client was sending what the cloud refused anyway).
 */
export const MAX_DRAIN_BYTES = 64 * 1024 * 1024;

/**
 * Called once a request has its answer: reads and discards whatever of its
 * body nothing read. A route that answers before the end of its body (a
 * multipart upload refused at its second file, a stream torn down on an
 * error) leaves the rest of the body in the socket, and Node reads no next
 * request on a keep-alive connection until that body has ended: the client's
 * next request on it waited until the request timeout (300 s). Node drains a
 * body nobody touched by itself; this covers a body a parser began to read.
 */
export function drainUnreadBody(raw: IncomingMessage, maxBytes = MAX_DRAIN_BYTES): void {
  if (raw.complete || raw.destroyed) return;
  let drained = 0;
  raw.unpipe();
  raw.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > maxBytes) raw.socket.destroy();
  });
  raw.resume();
}
