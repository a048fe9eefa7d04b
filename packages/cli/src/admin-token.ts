import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The environment variable that carries the admin token to every linesight process. */
export const ADMIN_TOKEN_ENV = 'LINESIGHT_ADMIN_TOKEN';

/** The admin token the environment gives, if any; the one place that reads it (empty counts as unset). */
export function envAdminToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const token = env[ADMIN_TOKEN_ENV];
  return token === undefined || token === '' ? undefined : token;
}

/**
 * The admin token for calling the cloud: --token, else LINESIGHT_ADMIN_TOKEN,
 * else `<dataDir>/admin-token` as the cloud writes it.
 */
export async function adminTokenFor(options: {
  token?: string;
  dataDir?: string;
}): Promise<string> {
  if (options.token) return options.token;
  const env = envAdminToken();
  if (env !== undefined) return env;
  const path = join(options.dataDir ?? './data', 'admin-token');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    throw new Error(
      `no admin token: pass --token, set LINESIGHT_ADMIN_TOKEN, or point --data-dir at the cloud's data folder (looked for ${path})`,
    );
  }
}
