import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, sep } from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import { LinesightError } from '@linesight/protocol';

/**
 * The browser libraries the pages import, by the name they are served under,
 * resolved from node_modules: only these files, never a path the client picks.
 */
const VENDOR_FILES: Record<string, VendorFile> = {
  'preact.mjs': { pkg: 'preact', file: 'dist/preact.mjs', type: 'text/javascript' },
  'preact-hooks.mjs': { pkg: 'preact', file: 'hooks/dist/hooks.mjs', type: 'text/javascript' },
  'htm.mjs': { pkg: 'htm', file: 'dist/htm.mjs', type: 'text/javascript' },
  'uplot.mjs': { pkg: 'uplot', file: 'dist/uPlot.esm.js', type: 'text/javascript' },
  'uplot.css': { pkg: 'uplot', file: 'dist/uPlot.min.css', type: 'text/css' },
};

interface VendorFile {
  pkg: string;
  file: string;
  type: string;
}

const require = createRequire(import.meta.url);

// From the package's main entry, since not every package exports its package.json.
function vendorPath(entry: VendorFile): string {
  const main = require.resolve(entry.pkg);
  const marker = `${sep}node_modules${sep}${entry.pkg.split('/').join(sep)}${sep}`;
  const at = main.lastIndexOf(marker);
  if (at < 0) throw new Error(`cannot find the package folder of ${entry.pkg} from ${main}`);
  return join(main.slice(0, at + marker.length), entry.file);
}

interface VendorAsset {
  body: Buffer;
  gzip: Buffer;
  etag: string;
  type: string;
}

/**
 * Serves the allowlisted browser libraries at /vendor/<name>, gzipped once in
 * memory (uPlot is 145 KB as shipped, 40 KB gzipped): no bundler, no build step.
 */
export async function vendorRoutes(app: FastifyInstance): Promise<void> {
  const cache = new Map<string, Promise<VendorAsset>>();
  const load = (name: string, entry: VendorFile) => {
    let asset = cache.get(name);
    if (asset === undefined) {
      asset = (async () => {
        const body = await readFile(vendorPath(entry));
        const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
        return { body, gzip: gzipSync(body), etag, type: `${entry.type}; charset=utf-8` };
      })();
      // A failed read is not cached: the next request tries again.
      asset.catch(() => cache.delete(name));
      cache.set(name, asset);
    }
    return asset;
  };

  app.get<{ Params: { file: string } }>(
    '/vendor/:file',
    {
      config: { auth: 'public' },
      schema: { hide: true, params: Type.Object({ file: Type.String() }) },
    },
    async (request, reply) => {
      const entry = VENDOR_FILES[request.params.file];
      if (entry === undefined)
        throw new LinesightError(
          'ERR_CLOUD_NOT_FOUND',
          `no browser library ${JSON.stringify(request.params.file)}`,
        );
      const asset = await load(request.params.file, entry);
      void reply
        .header('content-type', asset.type)
        .header('etag', asset.etag)
        .header('cache-control', 'no-cache')
        .header('vary', 'accept-encoding');
      if (request.headers['if-none-match'] === asset.etag) return reply.status(304).send();
      if (/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
        void reply.header('content-encoding', 'gzip');
        return reply.send(asset.gzip);
      }
      return reply.send(asset.body);
    },
  );
}
