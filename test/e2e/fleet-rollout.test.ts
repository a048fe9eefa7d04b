import { fleetRolloutSuite } from './fleet-rollout.suite.ts';

fleetRolloutSuite('embedded');
