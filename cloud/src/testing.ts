// Test helpers of the cloud for other workspaces' tests; never imported by runtime code.
export { startS3TestServer, type S3TestServer } from './blobs/s3-test-server.ts';
export {
  NORMAL_LOOK,
  FIXTURE_THRESHOLD,
  referenceOf,
  seededRandom,
  windowOf,
  type LineLook,
} from './drift/drift-fixtures.ts';
