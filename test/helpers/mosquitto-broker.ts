import { mosquittoInstalled } from '../../packages/cli/src/bench/mosquitto-process.ts';

export {
  makePasswordFile,
  startMosquitto,
  type MosquittoBroker,
} from '../../packages/cli/src/bench/mosquitto-process.ts';

/** Which broker a cloud test runs against. */
export type BrokerKind = 'embedded' | 'mosquitto';

/**
 * True when the broker tests against a real mosquitto can run here. Without it they are
 * skipped, with a line on stderr, unless LINESIGHT_REQUIRE_MOSQUITTO=1 (CI), which fails.
 */
export function mosquittoAvailable(): boolean {
  if (mosquittoInstalled()) return true;
  if (process.env.LINESIGHT_REQUIRE_MOSQUITTO === '1')
    throw new Error(
      'mosquitto (with mosquitto_ctrl and its dynamic-security plugin) is not installed but LINESIGHT_REQUIRE_MOSQUITTO=1: apt-get install -y mosquitto',
    );
  process.stderr.write('mosquitto not installed: skipping the external-broker tests\n');
  return false;
}
