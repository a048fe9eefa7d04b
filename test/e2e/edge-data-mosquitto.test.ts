import { describe } from 'vitest';
import { mosquittoAvailable } from '../helpers/mosquitto-broker.ts';
import { edgeDataSuite } from './edge-data.suite.ts';

// The same edge-data tests with the cloud managing a real Mosquitto (--mqtt-url).
describe.runIf(mosquittoAvailable())('with an external Mosquitto', () => {
  edgeDataSuite('mosquitto');
});
