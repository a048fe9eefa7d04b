import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { cloudClient, configFilePaths, resolveCloudUrl } from './cloud-options.ts';
import { deviceCommand } from './commands/device-command.ts';
import { markRequiredOptions } from './help.ts';

let dir: string;
let cwd: string;
let home: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-cli-config-'));
  cwd = join(dir, 'project');
  home = join(dir, 'home');
  await mkdir(cwd, { recursive: true });
  await mkdir(join(home, '.config', 'linesight'), { recursive: true });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('where the cloud URL comes from', () => {
  it('--cloud, else LINESIGHT_CLOUD, else ./linesight.json, else ~/.config/linesight/config.json', async () => {
    const lookup = { env: {}, cwd, home };
    const userFile = join(home, '.config', 'linesight', 'config.json');
    expect(configFilePaths(lookup)).toEqual([join(cwd, 'linesight.json'), userFile]);
    await writeFile(userFile, JSON.stringify({ cloud: 'http://user.example:8080/' }));
    expect(await resolveCloudUrl(undefined, lookup)).toBe('http://user.example:8080');
    await writeFile(join(cwd, 'linesight.json'), JSON.stringify({ cloud: 'http://local:1' }));
    expect(await resolveCloudUrl(undefined, lookup)).toBe('http://local:1');
    const env = { LINESIGHT_CLOUD: 'http://env:2' };
    expect(await resolveCloudUrl(undefined, { ...lookup, env })).toBe('http://env:2');
    expect(await resolveCloudUrl('http://flag:3', { ...lookup, env })).toBe('http://flag:3');
    await rm(join(cwd, 'linesight.json'));
    await rm(userFile);
  });

  it('honours XDG_CONFIG_HOME', () => {
    const paths = configFilePaths({ env: { XDG_CONFIG_HOME: '/etc/xdg-test' }, cwd, home });
    expect(paths[1]).toBe('/etc/xdg-test/linesight/config.json');
  });

  it('names every way to set it when none is set', async () => {
    const err = await resolveCloudUrl(undefined, { env: {}, cwd, home }).catch((e: unknown) => e);
    expect(isLinesightError(err, 'ERR_CLI_CONFIG')).toBe(true);
    expect((err as Error).message).toMatch(
      /--cloud <url>.*LINESIGHT_CLOUD.*linesight\.json.*config\.json/,
    );
  });

  it('refuses a config file with unknown keys or a non-URL', async () => {
    await writeFile(join(cwd, 'linesight.json'), JSON.stringify({ clud: 'http://x' }));
    await expect(resolveCloudUrl(undefined, { env: {}, cwd, home })).rejects.toThrow(
      /unknown keys clud \(known: cloud, token\)/,
    );
    await writeFile(join(cwd, 'linesight.json'), JSON.stringify({ cloud: 'localhost:8080' }));
    await expect(resolveCloudUrl(undefined, { env: {}, cwd, home })).rejects.toThrow(
      /is not http\(s\):\/\/host/,
    );
    await rm(join(cwd, 'linesight.json'));
  });

  it('takes the token from the config file unless LINESIGHT_ADMIN_TOKEN or --token say otherwise', async () => {
    await writeFile(
      join(cwd, 'linesight.json'),
      JSON.stringify({ cloud: 'http://local:1', token: 'from-file-token-0123' }),
    );
    const lookup = { env: {}, cwd, home };
    expect((await cloudClient({ dataDir: dir }, lookup)).adminToken).toBe('from-file-token-0123');
    expect((await cloudClient({ dataDir: dir, token: 'flag-token' }, lookup)).adminToken).toBe(
      'flag-token',
    );
    await rm(join(cwd, 'linesight.json'));
  });
});

describe('--help', () => {
  it('marks required options', () => {
    const help = markRequiredOptions(deviceCommand())
      .commands.find((c) => c.name() === 'provision')
      ?.helpInformation();
    expect(help).toMatch(/--id <id>\s+\(required\) device id/);
    expect(help).toMatch(/--cloud <url>\s+cloud HTTP URL \(default LINESIGHT_CLOUD/);
  });
});
