// Runs @20minutes/s3rver for tests in its own process. The parent starts it with
// --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation tokens with DES,
// which OpenSSL 3 (Node 17+) only offers through the legacy provider. Keeping the flag
// here, in a child process of the test helper, means no user or test runner needs it.
// argv: <directory> <bucket>; prints {"port":N} on stdout once listening; SIGTERM closes.
import { createRequire } from 'node:module';
import process from 'node:process';

// s3rver signs a path-style bucket request (ListObjectsV2: `GET /bucket/?list-type=2`) over
// `/bucket`, dropping the trailing slash the AWS SDK v3 sends and signs (AWS S3 and MinIO
// sign the path as sent), so every signed listing fails with SignatureDoesNotMatch. Its
// authentication middleware is wrapped, before s3rver loads it, to canonicalize such a
// request as `/bucket/` (its virtual-host branch with a mount path of `/` yields exactly that).
const require = createRequire(import.meta.url);
const authPath = require.resolve('@20minutes/s3rver/lib/middleware/authentication.js');
const authentication = require(authPath);
require.cache[authPath].exports = (...args) => {
  const inner = authentication(...args);
  return function authenticationKeepingBucketSlash(ctx, next) {
    const bucketWithSlash =
      !ctx.state.vhost &&
      ctx.params.bucket !== undefined &&
      !ctx.params.key &&
      /^\/[^/]+\/$/.test(ctx.path);
    if (!bucketWithSlash) return inner(ctx, next);
    const mountPath = ctx.mountPath;
    ctx.state.vhost = true;
    ctx.mountPath = '/';
    const restore = () => {
      ctx.state.vhost = false;
      ctx.mountPath = mountPath;
    };
    return inner(ctx, () => {
      restore();
      return next();
    }).finally(restore);
  };
};
const { default: S3rver } = await import('@20minutes/s3rver');

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({
  address: '127.0.0.1',
  port: 0,
  silent: true,
  directory,
  configureBuckets: [{ name: bucket, configs: [] }],
});
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
const stop = () => {
  server.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
// The parent's end of stdin closes when the parent dies: never outlive it.
process.stdin.on('end', stop);
process.stdin.resume();
