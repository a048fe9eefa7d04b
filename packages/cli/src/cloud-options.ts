import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { CloudApiClient } from '@linesight/api-client';
import { LinesightError } from '@linesight/protocol';
import { adminTokenFor, envAdminToken } from './admin-token.ts';

/** What a CLI config file may hold: where the cloud is, and a token for it. */
export interface CliConfigFile {
  cloud?: string;
  token?: string;
}

/** How --cloud and the token are found when not given: the environment and config files. */
export interface CloudLookup {
  env: NodeJS.ProcessEnv;
  /** Folder for ./linesight.json (default process.cwd()). */
  cwd?: string;
  /** Home folder for ~/.config/linesight/config.json (default os.homedir()). */
  home?: string;
}

/** Config files the CLI reads, first found wins: ./linesight.json, then the user's. */
export function configFilePaths(lookup: CloudLookup): string[] {
  const configHome = lookup.env.XDG_CONFIG_HOME || join(lookup.home ?? homedir(), '.config');
  return [
    resolve(lookup.cwd ?? process.cwd(), 'linesight.json'),
    join(configHome, 'linesight', 'config.json'),
  ];
}

async function readConfigFile(path: string): Promise<CliConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LinesightError('ERR_CLI_CONFIG', `cannot read ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new LinesightError('ERR_CLI_CONFIG', `${path} is not JSON`, { cause });
  }
  const problems: string[] = [];
  const file = parsed as Record<string, unknown>;
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    problems.push('expected an object like {"cloud": "http://127.0.0.1:8080"}');
  } else {
    for (const key of ['cloud', 'token'])
      if (file[key] !== undefined && typeof file[key] !== 'string')
        problems.push(`"${key}" must be a string`);
    const unknown = Object.keys(file).filter((k) => k !== 'cloud' && k !== 'token');
    if (unknown.length > 0)
      problems.push(`unknown keys ${unknown.join(', ')} (known: cloud, token)`);
  }
  if (problems.length > 0)
    throw new LinesightError('ERR_CLI_CONFIG', `${path}: ${problems.join('; ')}`, {
      details: { problems },
    });
  return file as CliConfigFile;
}

/** The first config file that exists, and where it is. */
export async function loadCliConfig(
  lookup: CloudLookup,
): Promise<{ path: string; config: CliConfigFile } | undefined> {
  for (const path of configFilePaths(lookup)) {
    const config = await readConfigFile(path);
    if (config !== undefined) return { path, config };
  }
  return undefined;
}

/**
 * The cloud URL: --cloud, else LINESIGHT_CLOUD, else "cloud" in the first
 * config file; ERR_CLI_CONFIG naming all three when none is set.
 */
export async function resolveCloudUrl(
  cloud: string | undefined,
  lookup: CloudLookup,
): Promise<string> {
  const url =
    cloud || lookup.env.LINESIGHT_CLOUD || (await loadCliConfig(lookup))?.config.cloud || undefined;
  if (url === undefined) {
    const [local, user] = configFilePaths(lookup);
    throw new LinesightError(
      'ERR_CLI_CONFIG',
      `no cloud URL: pass --cloud <url>, set LINESIGHT_CLOUD, or write {"cloud": "http://127.0.0.1:8080"} to ${local} or ${user}`,
    );
  }
  if (!/^https?:\/\/[^/]+/.test(url))
    throw new LinesightError(
      'ERR_CLI_CONFIG',
      `cloud URL ${JSON.stringify(url)} is not http(s)://host[:port]`,
    );
  return url.replace(/\/+$/, '');
}

/** Options every command that calls the cloud takes. */
export interface CloudCallOptions {
  cloud?: string;
  token?: string;
  dataDir: string;
}

/** Adds --cloud, --token and --data-dir (for the admin token file) to a command. */
export function withCloudCall(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--cloud <url>',
        'cloud HTTP URL (default LINESIGHT_CLOUD, else "cloud" in ./linesight.json or ~/.config/linesight/config.json)',
      ),
    )
    .option(
      '--token <token>',
      'admin or operator token (default LINESIGHT_ADMIN_TOKEN, else "token" in the config file, else <data-dir>/admin-token)',
    )
    .option('--data-dir <dir>', "the cloud's data folder, to find its admin token", './data');
}

/** The cloud URL and an API client for a command's options, from flags, environment and config files. */
export async function cloudClient(
  opts: CloudCallOptions,
  lookup: CloudLookup = { env: process.env },
): Promise<{ cloudUrl: string; adminToken: string; api: CloudApiClient }> {
  const cloudUrl = await resolveCloudUrl(opts.cloud, lookup);
  const fileToken = envAdminToken(lookup.env)
    ? undefined
    : (await loadCliConfig(lookup))?.config.token;
  const token = opts.token ?? fileToken;
  const adminToken = await adminTokenFor({ ...(token ? { token } : {}), dataDir: opts.dataDir });
  return { cloudUrl, adminToken, api: new CloudApiClient({ baseUrl: cloudUrl, adminToken }) };
}
