#!/usr/bin/env node
// The simulated-fleet process of `linesight soak` (its own entry, settings as arguments).
// Sources are TypeScript run through tsx, as for the linesight command.
import { register } from 'tsx/esm/api';

register();
await import('../src/soak/soak-fleet-main.ts');
