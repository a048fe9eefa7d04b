import { describe } from 'vitest';
import { mosquittoAvailable } from '../helpers/mosquitto-broker.ts';
import { edgeDataSuite } from './edge-data.suite.ts';

// The same tests with the cloud writing a real Mosquitto's password and ACL files (--mqtt-accounts files).
describe.runIf(mosquittoAvailable())('with an external Mosquitto, logins in files', () => {
  edgeDataSuite('mosquitto-files');
});
