// The trainer process of a retraining job (forked by train-process.ts, so training never
// blocks the cloud's event loop). Sources are TypeScript run through tsx, as for the cloud.
import { register } from 'tsx/esm/api';

register();
await import('./train-child-main.ts');
