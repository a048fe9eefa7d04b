import { Command } from 'commander';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';

type Opts = CloudCallOptions & { json?: boolean };

/** `linesight mqtt-reader`: read-only MQTT credentials for line systems and MES (admin only). */
export function readerCommand(): Command {
  const reader = new Command('mqtt-reader').description(
    'read-only MQTT credentials: a line system or MES subscribes to results and telemetry of the devices it is granted, nothing else',
  );
  withCloudCall(
    reader
      .command('create')
      .description('create a reader; its password is printed only this once')
      .argument('<name>', '1-64 of a-z 0-9 _ . @ -')
      .argument('<devices...>', 'granted device ids, or * (quoted) for every device')
      .option('--json', 'print JSON'),
  ).action(async (name: string, devices: string[], opts: Opts) => {
    const created = await (await cloudClient(opts)).api.createMqttReader(name, devices);
    console.log(
      opts.json
        ? JSON.stringify(created)
        : [
            `username (and client id): ${created.username}`,
            `password: ${created.password}`,
            `topics: linesight/v1/devices/${created.devices[0] === '*' ? '+' : '<id>'}/results and .../telemetry for ${created.devices.join(', ')}`,
          ].join('\n'),
    );
  });
  withCloudCall(
    reader
      .command('list')
      .description('list readers and their grants')
      .option('--json', 'print JSON'),
  ).action(async (opts: Opts) => {
    const list = await (await cloudClient(opts)).api.listMqttReaders();
    if (opts.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log('no MQTT readers');
    else
      for (const r of list)
        console.log(`${r.name}  ${r.devices.join(',')}  created ${r.createdAt} by ${r.createdBy}`);
  });
  withCloudCall(
    reader
      .command('revoke')
      .description('revoke a reader: refused from now on, and its live session is ended')
      .argument('<name>', 'which reader'),
  ).action(async (name: string, opts: Opts) => {
    await (await cloudClient(opts)).api.revokeMqttReader(name);
    console.log(`revoked the MQTT reader ${name}`);
  });
  return reader;
}
