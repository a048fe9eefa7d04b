import { join } from 'node:path';
import { Command } from 'commander';
import { writeDeviceCredentials } from '@linesight/agent';
import { cloudClient, withCloudCall } from '../cloud-options.ts';

/** `linesight device`: device provisioning. */
export function deviceCommand(): Command {
  const device = new Command('device').description('manage devices');
  withCloudCall(
    device
      .command('provision')
      .description('provision a device and write its credentials file (device.json, mode 0600)')
      .requiredOption('--id <id>', 'device id: 1-64 of A-Z a-z 0-9 _ . -')
      .option('--out <file>', 'credentials file to write (default ./data/agent-<id>/device.json)')
      .option('--label <key=value...>', 'labels for rollout selectors'),
  ).action(
    async (opts: {
      id: string;
      cloud?: string;
      out?: string;
      label?: string[];
      token?: string;
      dataDir: string;
    }) => {
      const { api, cloudUrl } = await cloudClient(opts);
      const labels = Object.fromEntries(
        (opts.label ?? []).map((l) => l.split('=', 2) as [string, string]),
      );
      const provisioned = await api.provisionDevice(opts.id, labels);
      const out = opts.out ?? join('data', `agent-${opts.id}`, 'device.json');
      await writeDeviceCredentials(out, { ...provisioned, cloudUrl });
      console.log(`provisioned ${opts.id}; credentials in ${out}`);
    },
  );
  return device;
}
