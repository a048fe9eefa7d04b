// A worker thread of FeaturePool (feature-pool.ts). Worker threads do not inherit the
// TypeScript loader: from a source checkout this registers tsx, as the linesight command
// does; a compiled release has the compiled entry beside this file.
import { existsSync } from 'node:fs';

const compiled = new URL('./feature-worker-main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./feature-worker-main.ts');
}
