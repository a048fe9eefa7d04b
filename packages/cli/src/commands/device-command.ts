import { join } from 'node:path';
import { Command } from 'commander';
import { writeDeviceCredentials } from '@linesight/agent';
import { CloudApiClient } from '@linesight/api-client';
import { adminTokenFor } from '../admin-token.ts';

/** `linesight device`: device provisioning. */
export function deviceCommand(): Command {
  const device = new Command('device').description('manage devices');
  device
    .command('provision')
    .description('provision a device and write its credentials file (device.json, mode 0600)')
    .requiredOption('--id <id>', 'device id: 1-64 of A-Z a-z 0-9 _ . -')
    .requiredOption('--cloud <url>', 'cloud HTTP URL')
    .option('--out <file>', 'credentials file to write (default ./data/agent-<id>/device.json)')
    .option('--label <key=value...>', 'labels for rollout selectors')
    .option(
      '--token <token>',
      'admin token (default LINESIGHT_ADMIN_TOKEN or <data-dir>/admin-token)',
    )
    .option('--data-dir <dir>', "the cloud's data folder, to find its admin token", './data')
    .action(
      async (opts: {
        id: string;
        cloud: string;
        out?: string;
        label?: string[];
        token?: string;
        dataDir: string;
      }) => {
        const api = new CloudApiClient({
          baseUrl: opts.cloud,
          adminToken: await adminTokenFor(opts),
        });
        const labels = Object.fromEntries(
          (opts.label ?? []).map((l) => l.split('=', 2) as [string, string]),
        );
        const provisioned = await api.provisionDevice(opts.id, labels);
        const out = opts.out ?? join('data', `agent-${opts.id}`, 'device.json');
        await writeDeviceCredentials(out, { ...provisioned, cloudUrl: opts.cloud });
        console.log(`provisioned ${opts.id}; credentials in ${out}`);
      },
    );
  return device;
}
