import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The admin token for calling the cloud: --token, else LINESIGHT_ADMIN_TOKEN,
 * else `<dataDir>/admin-token` as the cloud writes it.
 */
export async function adminTokenFor(options: {
  token?: string;
  dataDir?: string;
}): Promise<string> {
  if (options.token) return options.token;
  const env = process.env.LINESIGHT_ADMIN_TOKEN;
  if (env) return env;
  const path = join(options.dataDir ?? './data', 'admin-token');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    throw new Error(
      `no admin token: pass --token, set LINESIGHT_ADMIN_TOKEN, or point --data-dir at the cloud's data folder (looked for ${path})`,
    );
  }
}
