import { Command } from 'commander';
import { runCloud } from '@linesight/cloud';
import { parsePort } from '../options.ts';

/** `linesight cloud`: the control plane with its embedded broker. */
export function cloudCommand(): Command {
  return new Command('cloud')
    .description(
      'run the cloud control plane: REST API + docs, embedded MQTT broker, registry and blob store',
    )
    .option('--http-port <port>', 'HTTP port (0 = any free port)', parsePort, 8080)
    .option('--mqtt-port <port>', 'MQTT port (0 = any free port)', parsePort, 1883)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--data-dir <dir>',
      'where the registry, keys, admin token and artifacts live',
      './data',
    )
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', 'info')
    .addHelpText(
      'after',
      '\nThe admin token comes from LINESIGHT_ADMIN_TOKEN; without it one is created in <data-dir>/admin-token (mode 0600).',
    )
    .action(
      async (opts: {
        httpPort: number;
        mqttPort: number;
        host: string;
        dataDir: string;
        logLevel: string;
      }) => {
        await runCloud({
          config: {
            httpPort: opts.httpPort,
            mqttPort: opts.mqttPort,
            host: opts.host,
            dataDir: opts.dataDir,
            logLevel: opts.logLevel as 'info',
          },
          env: process.env,
        });
      },
    );
}
