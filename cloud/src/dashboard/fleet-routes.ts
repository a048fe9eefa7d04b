import type { Writable } from 'node:stream';
import { constants, createGzip, gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FleetViewSchema, type FleetView } from '@linesight/protocol';
import { fleetTotals } from './fleet-view.ts';
import type { FleetWatch } from './fleet-watch.ts';

/** Options of the fleet routes. */
export interface FleetRoutesOptions {
  watch: FleetWatch;
  /** A stream whose client reads slower than this much buffered output is closed (it reconnects for a fresh snapshot). */
  maxBufferedBytes: number;
  /** Comment lines keep idle streams open through proxies. */
  keepAliveMs: number;
}

/** Bodies smaller than this go uncompressed (gzip's header would outweigh the saving). */
const MIN_GZIP_BYTES = 1024;

function acceptsGzip(request: FastifyRequest): boolean {
  return /\bgzip\b/.test(request.headers['accept-encoding'] ?? '');
}

/**
 * GET /v1/dashboard/fleet (every device's row and the header counts) and
 * GET /v1/dashboard/fleet/stream (Server-Sent Events: a `snapshot`, then an
 * `update` with the rows that changed, at most once per poll). Both are
 * gzipped for clients that accept it: a 1,000-device snapshot is ~300 KB of
 * repetitive JSON and ~10 times smaller compressed. The stream is flushed
 * after every event, so compression never delays an update.
 */
export async function fleetRoutes(
  app: FastifyInstance,
  options: FleetRoutesOptions,
): Promise<void> {
  const { watch } = options;
  /** Ends each open stream. */
  const streams = new Set<() => void>();

  app.get(
    '/v1/dashboard/fleet',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          'Every device with state, version, frames/s, p99 latency, defect and unknown rates, camera and drift alert levels, and fleet counts',
        // Documents the answer; the handler sends it already serialized (and gzipped when large).
        response: { 200: FleetViewSchema },
      },
    },
    async (request, reply) => {
      const devices = watch.snapshot();
      const view: FleetView = {
        at: new Date().toISOString(),
        totals: fleetTotals(devices),
        devices,
      };
      const body = JSON.stringify(view);
      void reply
        .header('content-type', 'application/json; charset=utf-8')
        .header('vary', 'accept-encoding');
      if (body.length < MIN_GZIP_BYTES || !acceptsGzip(request)) return reply.send(body);
      return reply.header('content-encoding', 'gzip').send(gzipSync(body));
    },
  );

  app.get(
    '/v1/dashboard/fleet/stream',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          'Server-Sent Events of the fleet: "snapshot" with every row, then "update" with the rows that changed',
        response: {
          200: {
            description:
              "An event stream; each event's data is a FleetView (see GET /v1/dashboard/fleet)",
            content: { 'text/event-stream': { schema: { type: 'string' } } },
          },
        },
      },
    },
    async (request, reply) => {
      reply.hijack();
      const res = reply.raw;
      const gzip = acceptsGzip(request) ? createGzip() : undefined;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
        vary: 'accept-encoding',
        ...(gzip !== undefined ? { 'content-encoding': 'gzip' } : {}),
      });
      const out: Writable = gzip ?? res;
      if (gzip !== undefined) gzip.pipe(res);
      // Bytes not yet handed to the socket: queued in the compressor and in the response.
      const buffered = () =>
        res.writableLength + (gzip === undefined ? 0 : gzip.writableLength + gzip.readableLength);
      const write = (text: string) => {
        out.write(text);
        gzip?.flush(constants.Z_SYNC_FLUSH);
      };
      let unsubscribe = () => {};
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        unsubscribe();
        clearInterval(keepAlive);
        streams.delete(end);
        if (!out.writableEnded) out.end();
      };
      streams.add(end);
      // Policy when a client cannot keep up: close its stream rather than buffer without bound.
      const send = (event: string, data: unknown) => {
        if (ended) return;
        if (buffered() > options.maxBufferedBytes) {
          request.log.warn({ bufferedBytes: buffered() }, 'fleet stream client too slow; closing');
          end();
          return;
        }
        write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const keepAlive = setInterval(() => {
        if (!ended) write(': keep-alive\n\n');
      }, options.keepAliveMs);
      request.raw.on('close', end);
      res.on('error', end);
      gzip?.on('error', (err) => {
        request.log.warn({ err }, 'fleet stream compression failed; closing');
        end();
        res.destroy();
      });
      const devices = watch.snapshot();
      send('snapshot', { at: new Date().toISOString(), totals: fleetTotals(devices), devices });
      if (!ended)
        unsubscribe = watch.subscribe((changed, all) => {
          send('update', {
            at: new Date().toISOString(),
            totals: fleetTotals(all),
            devices: changed,
          });
        });
    },
  );

  app.addHook('onClose', async () => {
    watch.close();
    for (const end of [...streams]) end();
    streams.clear();
  });
}
