// A worker thread of HeadGradientPool (head-gradient-pool.ts). Sources are TypeScript run
// through tsx, as for the linesight command.
import { register } from 'tsx/esm/api';

register();
await import('./head-gradient-worker-main.ts');
