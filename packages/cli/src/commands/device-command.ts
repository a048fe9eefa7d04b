import { join } from 'node:path';
import { Command } from 'commander';
import { writeDeviceCredentials } from '@linesight/agent';
import type { DeviceSummary } from '@linesight/api-client';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';

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
  withCloudCall(
    device
      .command('list')
      .description('list devices with presence, model and frames')
      .option('--json', 'print JSON'),
  ).action(async (opts: CloudCallOptions & { json?: boolean }) => {
    const list = await (await cloudClient(opts)).api.listDevices();
    if (opts.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log('no devices');
    else for (const d of list) console.log(deviceLine(d));
  });
  withCloudCall(
    device
      .command('show')
      .description('show one device')
      .argument('<id>', 'device id')
      .option('--json', 'print JSON'),
  ).action(async (id: string, opts: CloudCallOptions & { json?: boolean }) => {
    const d = await (await cloudClient(opts)).api.getDevice(id);
    console.log(opts.json ? JSON.stringify(d) : JSON.stringify(d, null, 2));
  });
  withCloudCall(
    device
      .command('rotate-credentials')
      .description(
        'give a device new credentials (re-provision): the old secret stops working and its session ends; writes the new device.json',
      )
      .argument('<id>', 'device id')
      .option('--out <file>', 'credentials file to write (default ./data/agent-<id>/device.json)'),
  ).action(async (id: string, opts: CloudCallOptions & { out?: string }) => {
    const { api, cloudUrl } = await cloudClient(opts);
    const rotated = await api.rotateDeviceCredentials(id);
    const out = opts.out ?? join('data', `agent-${id}`, 'device.json');
    await writeDeviceCredentials(out, { ...rotated, cloudUrl });
    console.log(`new credentials for ${id} in ${out}; copy it to the device`);
  });
  withCloudCall(
    device
      .command('decommission')
      .description(
        'retire a device: credentials revoked, session ended, retained topics cleared (the audit log keeps the record)',
      )
      .argument('<id>', 'device id'),
  ).action(async (id: string, opts: CloudCallOptions) => {
    await (await cloudClient(opts)).api.decommissionDevice(id);
    console.log(`decommissioned ${id}`);
  });
  return device;
}

/** One device as a line: id, presence, model, frames. */
export function deviceLine(d: DeviceSummary): string {
  const model = d.model ? `${d.model.name}@${d.model.version}` : 'no model';
  const desired =
    d.desiredModel &&
    (d.desiredModel.name !== d.model?.name || d.desiredModel.version !== d.model?.version)
      ? ` -> ${d.desiredModel.name}@${d.desiredModel.version}`
      : '';
  const fps = d.fps === null ? '' : `, ${d.fps.toFixed(1)} frames/s`;
  return `${d.id}  ${d.online ? 'online' : 'offline'}  ${model}${desired}  ${d.framesProcessed} frames, ${d.defects} defects${fps}${d.lastError ? `  last error ${d.lastError.code}` : ''}`;
}
