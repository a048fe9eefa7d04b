import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LinesightError, type TrustedKey } from '@linesight/protocol';

/** What provisioning gives a device; kept in `<dataDir>/device.json` (mode 0600). */
export interface DeviceCredentials {
  deviceId: string;
  username: string;
  password: string;
  trustedKeys: TrustedKey[];
  mqttUrl?: string;
  cloudUrl?: string;
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
  if (
    typeof creds.deviceId !== 'string' ||
    typeof creds.password !== 'string' ||
    !Array.isArray(creds.trustedKeys)
  ) {
    throw new LinesightError(
      'ERR_AGENT_CONFIG',
      `device credentials ${path} lack deviceId, password or trustedKeys`,
    );
  }
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
