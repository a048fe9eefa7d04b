import { Command } from 'commander';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';

/** `linesight keys`: the cloud's signing keys. */
export function keysCommand(): Command {
  const keys = new Command('keys').description("the cloud's Ed25519 signing keys");
  withCloudCall(
    keys
      .command('rotate')
      .description(
        'add a signing key and make it active; devices learn it through a trust list signed by a key they trust',
      )
      .option('--json', 'print JSON'),
  ).action(async (opts: CloudCallOptions & { json?: boolean }) => {
    const result = await (await cloudClient(opts)).api.rotateKeys();
    console.log(
      opts.json
        ? JSON.stringify(result)
        : `active signing key ${result.keyId}; desired state re-issued to ${result.devices} devices`,
    );
  });
  return keys;
}
