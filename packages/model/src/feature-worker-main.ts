// Entry of a FeaturePool worker: holds the pyramid geometry and extracts the
// features of each image it is sent.
import { parentPort } from 'node:worker_threads';
import type { FeatureInit, FeatureReply, FeatureRequest } from './feature-pool.ts';
import { pyramidFeatures, type PyramidGeometry } from './pyramid-features.ts';

let geometry: PyramidGeometry | undefined;

parentPort?.on('message', (message: FeatureInit | FeatureRequest) => {
  if (message.type === 'init') {
    geometry = message.geometry;
    return;
  }
  if (geometry === undefined) throw new Error('feature worker used before init');
  const features = pyramidFeatures(message.input, geometry).data;
  const reply: FeatureReply = { id: message.id, features };
  parentPort?.postMessage(reply, [features.buffer as ArrayBuffer]);
});
