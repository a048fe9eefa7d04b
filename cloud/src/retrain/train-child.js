// The trainer process of a retraining job (forked by train-process.ts, so training never
// blocks the cloud's event loop). From a source checkout the sources are TypeScript, run
// through tsx as for the cloud; a compiled release has the compiled entry beside this file.
import { existsSync } from 'node:fs';

const compiled = new URL('./train-child-main.js', import.meta.url);
if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./train-child-main.ts');
}
