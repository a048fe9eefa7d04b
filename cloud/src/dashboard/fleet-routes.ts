import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
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

/**
 * GET /v1/dashboard/fleet (every device's row and the header counts) and
 * GET /v1/dashboard/fleet/stream (Server-Sent Events: a `snapshot`, then an
 * `update` with the rows that changed, at most once per poll).
 */
export async function fleetRoutes(
  app: FastifyInstance,
  options: FleetRoutesOptions,
): Promise<void> {
  const { watch } = options;
  const streams = new Set<ServerResponse>();

  app.get(
    '/v1/dashboard/fleet',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          'Every device with state, version, frames/s, p99 latency, defect and unknown rates, and fleet counts',
      },
    },
    async () => {
      const devices = watch.snapshot();
      return { at: new Date().toISOString(), totals: fleetTotals(devices), devices };
    },
  );

  app.get(
    '/v1/dashboard/fleet/stream',
    {
      schema: {
        tags: ['dashboard'],
        summary:
          'Server-Sent Events of the fleet: "snapshot" with every row, then "update" with the rows that changed',
      },
    },
    async (request, reply) => {
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      streams.add(res);
      let unsubscribe = () => {};
      const end = () => {
        unsubscribe();
        clearInterval(keepAlive);
        streams.delete(res);
        if (!res.writableEnded) res.end();
      };
      // Policy when a client cannot keep up: close its stream rather than buffer without bound.
      const send = (event: string, data: unknown) => {
        if (res.writableLength > options.maxBufferedBytes) {
          request.log.warn(
            { bufferedBytes: res.writableLength },
            'fleet stream client too slow; closing',
          );
          end();
          return;
        }
        res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), options.keepAliveMs);
      request.raw.on('close', end);
      res.on('error', end);
      const devices = watch.snapshot();
      send('snapshot', { at: new Date().toISOString(), totals: fleetTotals(devices), devices });
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
    for (const res of streams) res.end();
    streams.clear();
  });
}
