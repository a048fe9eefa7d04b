#!/usr/bin/env node
// The simulated-fleet process of `linesight bench rollout` (its own entry, settings as arguments).
// Sources are TypeScript run through tsx, as for the linesight command.
import { register } from 'tsx/esm/api';

register();
await import('../src/bench/rollout-fleet-main.ts');
