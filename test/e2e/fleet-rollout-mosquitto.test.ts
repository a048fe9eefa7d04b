import { describe } from 'vitest';
import { mosquittoAvailable } from '../helpers/mosquitto-broker.ts';
import { fleetRolloutSuite } from './fleet-rollout.suite.ts';

// The same fleet tests with the cloud managing a real Mosquitto (--mqtt-url).
describe.runIf(mosquittoAvailable())('with an external Mosquitto', () => {
  fleetRolloutSuite('mosquitto');
});
