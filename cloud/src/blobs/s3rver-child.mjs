// Runs @20minutes/s3rver for tests in its own process. The parent starts it with
// --openssl-legacy-provider: s3rver encrypts ListObjectsV2 continuation tokens with DES,
// which OpenSSL 3 (Node 17+) only offers through the legacy provider. Keeping the flag
// here, in a child process of the test helper, means no user or test runner needs it.
// argv: <directory> <bucket>; prints {"port":N} on stdout once listening; SIGTERM closes.
import process from 'node:process';
import S3rver from '@20minutes/s3rver';

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
