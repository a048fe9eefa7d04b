import {
  mosquittoInstalled,
  startMosquitto,
  type MosquittoBroker,
} from '../../packages/cli/src/bench/mosquitto-process.ts';

export {
  makePasswordFile,
  startMosquitto,
  type MosquittoBroker,
} from '../../packages/cli/src/bench/mosquitto-process.ts';

/** Which broker a cloud test runs against: Mosquitto with dynamic security, or with password and ACL files. */
export type BrokerKind = 'embedded' | 'mosquitto' | 'mosquitto-files';

/** The cloud's settings for a Mosquitto started by startMosquitto (Cloud config fields). */
export function mosquittoCloudConfig(broker: MosquittoBroker) {
  return {
    mqttUrl: broker.url,
    mqttPassword: broker.password,
    ...(broker.accounts === 'files'
      ? {
          mqttAccounts: 'files' as const,
          mosquittoConfigDir: broker.configDir!,
          mosquittoPidFile: broker.pidFile!,
          advertisedMqttUrl: broker.deviceUrl,
        }
      : {}),
  };
}

/** The same as `linesight cloud` arguments. */
export function mosquittoCloudArgs(broker: MosquittoBroker): string[] {
  return [
    '--mqtt-url',
    broker.url,
    '--mqtt-password-file',
    broker.passwordFile,
    ...(broker.accounts === 'files'
      ? [
          '--mqtt-accounts',
          'files',
          '--mosquitto-config-dir',
          broker.configDir!,
          '--mosquitto-pid-file',
          broker.pidFile!,
          '--advertised-mqtt-url',
          broker.deviceUrl,
        ]
      : []),
  ];
}

/** Starts the Mosquitto a BrokerKind names (not 'embedded'). */
export function startMosquittoFor(kind: Exclude<BrokerKind, 'embedded'>): Promise<MosquittoBroker> {
  return startMosquitto({ accounts: kind === 'mosquitto-files' ? 'files' : 'dynsec' });
}

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
