import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { writeDeviceCredentials } from '@linesight/agent';
import type { DeviceEdgeSettings, DeviceSummary } from '@linesight/api-client';
import type { EdgeDataSettings } from '@linesight/protocol';
import { cloudClient, withCloudCall, type CloudCallOptions } from '../cloud-options.ts';
import { parsePositive, parsePositiveInt, parseShare } from '../options.ts';

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
      const labels = parseLabels(opts.label ?? []);
      const provisioned = await api.provisionDevice(opts.id, labels);
      const out = opts.out ?? join('data', `agent-${opts.id}`, 'device.json');
      await writeDeviceCredentials(out, { ...provisioned, cloudUrl });
      console.log(`provisioned ${opts.id}; credentials in ${out}`);
    },
  );
  withCloudCall(
    device
      .command('enrolment-token')
      .description(
        'print a token that may provision this one device, once, before it expires: give it to the installer instead of an admin token (scripts/install-agent.sh)',
      )
      .argument('<id>', 'device id to be provisioned')
      .option(
        '--ttl <sec>',
        'seconds the token stays valid (60 to 604800)',
        parsePositiveInt,
        86_400,
      )
      .option('--label <key=value...>', 'labels the device gets (fixed by the token)'),
  ).action(async (id: string, opts: CloudCallOptions & { ttl: number; label?: string[] }) => {
    const issued = await (
      await cloudClient(opts)
    ).api.createEnrolmentToken(id, {
      ttlSec: opts.ttl,
      ...(opts.label ? { labels: parseLabels(opts.label) } : {}),
    });
    // The token alone on stdout, so `$(linesight device enrolment-token ...)` captures it.
    console.log(issued.token);
    console.error(
      `enrolment token ${issued.tokenId} for ${issued.deviceId}, valid until ${issued.expiresAt}; provision with LINESIGHT_ADMIN_TOKEN=<token> linesight device provision --id ${issued.deviceId}`,
    );
  });
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
  withCloudCall(
    device
      .command('revoke-cert')
      .description(
        'revoke one client certificate of a device that stays in service (stolen, leaked): refused from now on over mqtts and HTTPS, a live session that used it is ended; its password and other certificates keep working',
      )
      .argument('<id>', 'device id')
      .option('--cert <file>', 'the certificate to revoke (PEM); it must name the device')
      .option(
        '--fingerprint <sha256>',
        'or its SHA-256 fingerprint (openssl x509 -fingerprint -sha256)',
      )
      .option('--reason <text>', 'kept in the audit log')
      .option('--json', 'print JSON'),
  ).action(
    async (
      id: string,
      opts: CloudCallOptions & {
        cert?: string;
        fingerprint?: string;
        reason?: string;
        json?: boolean;
      },
    ) => {
      if ((opts.cert === undefined) === (opts.fingerprint === undefined))
        throw new InvalidArgumentError('give either --cert <file> or --fingerprint <sha256>');
      const certificate =
        opts.cert !== undefined
          ? { certificatePem: await readFile(opts.cert, 'utf8') }
          : { fingerprintSha256: opts.fingerprint ?? '' };
      const revoked = await (
        await cloudClient(opts)
      ).api.revokeDeviceCertificate(id, {
        ...certificate,
        ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
      });
      if (opts.json) console.log(JSON.stringify(revoked));
      else
        console.log(
          revoked.alreadyRevoked
            ? `certificate ${revoked.fingerprintSha256} of ${id} was already revoked (${revoked.revokedAt} by ${revoked.revokedBy})`
            : `revoked certificate ${revoked.fingerprintSha256} of ${id}; ${revoked.sessionEnded ? 'its live session was ended' : 'no live session used it'}`,
        );
    },
  );
  withCloudCall(
    device
      .command('revoked-certs')
      .description("list a device's revoked client certificates, newest first")
      .argument('<id>', 'device id')
      .option('--json', 'print JSON'),
  ).action(async (id: string, opts: CloudCallOptions & { json?: boolean }) => {
    const list = await (await cloudClient(opts)).api.listRevokedCertificates(id);
    if (opts.json) console.log(JSON.stringify(list));
    else if (list.length === 0) console.log(`no revoked certificates for ${id}`);
    else
      for (const r of list)
        console.log(
          `${r.fingerprintSha256}  ${r.revokedAt}  ${r.revokedBy}${r.reason !== null ? `  ${r.reason}` : ''}`,
        );
  });
  withCloudCall(
    device
      .command('edge-data')
      .description(
        "show a device's telemetry window and sampling policy (asked for and reported); with options, set them in its signed desired state (replacing the previous settings; what is left out takes the agent's defaults)",
      )
      .argument('<id>', 'device id')
      .option('--window-sec <s>', 'telemetry window length in seconds', parsePositive)
      .option('--random-share <share>', 'share of ordinary frames sampled, 0-1', parseShare)
      .option(
        '--uncertainty-band <d>',
        'sample frames whose |score - threshold| is at most this share of the threshold',
        parseShare,
      )
      .option('--no-defects', 'do not keep every defect')
      .option('--jpeg-quality <q>', 'JPEG quality of stored samples, 10-100', parsePositiveInt)
      .option('--max-side <px>', 'longest side of stored samples', parsePositiveInt)
      .option('--no-anomaly-map', 'do not store the anomaly map beside each sample')
      .option('--json', 'print JSON'),
  ).action(async (id: string, opts: EdgeDataOptions) => {
    const { api } = await cloudClient(opts);
    const settings = edgeSettingsFrom(opts);
    const view =
      settings === undefined
        ? await api.getEdgeSettings(id)
        : await api.setEdgeSettings(id, settings);
    console.log(opts.json ? JSON.stringify(view) : edgeSettingsText(view));
  });
  return device;
}

interface EdgeDataOptions extends CloudCallOptions {
  windowSec?: number;
  randomShare?: number;
  uncertaintyBand?: number;
  defects: boolean;
  jpegQuality?: number;
  maxSide?: number;
  anomalyMap: boolean;
  json?: boolean;
}

/** The settings the options ask for; undefined when none is given (show only). */
export function edgeSettingsFrom(opts: EdgeDataOptions): EdgeDataSettings | undefined {
  const sampling: NonNullable<EdgeDataSettings['sampling']> = {
    ...(opts.randomShare !== undefined ? { randomShare: opts.randomShare } : {}),
    ...(opts.uncertaintyBand !== undefined ? { uncertaintyBand: opts.uncertaintyBand } : {}),
    ...(opts.defects ? {} : { defects: false }),
    ...(opts.jpegQuality !== undefined ? { jpegQuality: opts.jpegQuality } : {}),
    ...(opts.maxSide !== undefined ? { maxSide: opts.maxSide } : {}),
    ...(opts.anomalyMap ? {} : { anomalyMap: false }),
  };
  const settings: EdgeDataSettings = {
    ...(opts.windowSec !== undefined ? { windowSec: opts.windowSec } : {}),
    ...(Object.keys(sampling).length > 0 ? { sampling } : {}),
  };
  return Object.keys(settings).length > 0 ? settings : undefined;
}

function edgeSettingsText(v: DeviceEdgeSettings): string {
  const reported = v.reported;
  return [
    `${v.deviceId}`,
    `  asked:    ${v.desired === null ? 'agent defaults' : JSON.stringify(v.desired)}${v.revision === null ? '' : ` (desired revision ${v.revision})`}`,
    `  running:  ${reported === null ? 'not reported yet' : `window ${reported.windowSec} s, sampling ${JSON.stringify(reported.sampling)}`}`,
    ...(reported === null ? [] : [`  store:    ${JSON.stringify(reported.store)}`]),
  ].join('\n');
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

/** `key=value` labels; a label without `=` is refused. */
function parseLabels(pairs: readonly string[]): Record<string, string> {
  return Object.fromEntries(
    pairs.map((l) => {
      const eq = l.indexOf('=');
      if (eq < 1) throw new InvalidArgumentError(`label ${JSON.stringify(l)} is not key=value`);
      return [l.slice(0, eq), l.slice(eq + 1)] as [string, string];
    }),
  );
}
