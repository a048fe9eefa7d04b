import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LinesightError, type TrustedKey } from '@linesight/protocol';

/** What provisioning gives a device; kept in `<dataDir>/device.json` (mode 0600). */
export interface DeviceCredentials {
  deviceId: string;
  username: string;
  /** Absent for a device that logs in only with its client certificate. */
  password?: string;
  trustedKeys: TrustedKey[];
  mqttUrl?: string;
  cloudUrl?: string;
  /** The cloud's CA (PEM), present when the cloud serves TLS: the only CA the agent trusts for it. */
  caPem?: string;
  /**
   * Files (PEM; relative to this file's folder) of a client certificate naming the device
   * id and its key: the device logs in with it, and `password` may be empty.
   */
  clientCert?: string;
  clientKey?: string;
}

/** Reads a device credentials file; ERR_AGENT_CONFIG when missing or malformed. */
export async function readDeviceCredentials(path: string): Promise<DeviceCredentials> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new LinesightError(
      'ERR_AGENT_CONFIG',
      `cannot read device credentials ${path}: provision the device first (linesight device provision)`,
      { cause },
    );
  }
  let creds: DeviceCredentials;
  try {
    creds = JSON.parse(text) as DeviceCredentials;
  } catch (cause) {
    throw new LinesightError('ERR_AGENT_CONFIG', `device credentials ${path} are not JSON`, {
      cause,
    });
  }
  // The password may be absent: a client certificate (here or given to the agent) replaces it,
  // and the agent's configuration says so when neither is there.
  if (typeof creds.deviceId !== 'string' || !Array.isArray(creds.trustedKeys)) {
    throw new LinesightError(
      'ERR_AGENT_CONFIG',
      `device credentials ${path} lack deviceId or trustedKeys`,
    );
  }
  for (const field of ['password', 'caPem', 'clientCert', 'clientKey'] as const)
    if (creds[field] !== undefined && typeof creds[field] !== 'string')
      throw new LinesightError(
        'ERR_AGENT_CONFIG',
        `device credentials ${path}: ${field} must be a string`,
      );
  return creds;
}

/** Writes a device credentials file with mode 0600. */
export async function writeDeviceCredentials(
  path: string,
  creds: DeviceCredentials,
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
}
