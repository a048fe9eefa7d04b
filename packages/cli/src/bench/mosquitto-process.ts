import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort, stopChild, waitForBroker } from './broker-child.ts';

/** The shipped configurations; tests and benchmarks run them with only the ports and paths changed. */
const SHIPPED_CONFIG = fileURLToPath(
  new URL('../../../../manifests/mosquitto/mosquitto.conf', import.meta.url),
);
const SHIPPED_FILES_CONFIG = fileURLToPath(
  new URL('../../../../manifests/mosquitto/mosquitto-files.conf', import.meta.url),
);

/**
 * How the cloud keeps the broker's logins: the dynamic-security plugin, or the
 * password and ACL files it writes (mosquitto-files.conf, two listeners).
 */
export type MosquittoAccounts = 'dynsec' | 'files';

/** Debian's mosquitto on 127.0.0.1 with the dynamic-security plugin and the cloud's admin login. */
export interface MosquittoBroker {
  accounts: MosquittoAccounts;
  /** mqtt://127.0.0.1:port, no credentials: where the cloud logs in (`--mqtt-url`). */
  url: string;
  /** Where devices and readers log in (`--advertised-mqtt-url`): `url` with dynsec, the devices' listener with files. */
  deviceUrl: string;
  /** The cloud's login: a dynamic-security admin, or (files) the one line of the first password file. */
  username: string;
  password: string;
  /** The file holding `password` (for `--mqtt-password-file`). */
  passwordFile: string;
  /** With files: the folder of the password and ACL files (`--mosquitto-config-dir`) and the pid file (`--mosquitto-pid-file`). */
  configDir?: string;
  pidFile?: string;
  /** The broker's log lines so far (the last 1,000). */
  output: string[];
  /** Process id of the running broker (undefined while halted). */
  readonly pid: number | undefined;
  /** Stops the process (SIGTERM: it saves its persistence file); resume() starts it again on the same port and state. */
  halt(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
}

function findBinary(names: string[]): string | undefined {
  for (const candidate of names) {
    const probe = spawnSync(candidate, ['--help'], { stdio: 'ignore' });
    if (probe.error === undefined) return candidate;
  }
  return undefined;
}

/** The dynamic-security plugin of the installed mosquitto, if any. */
function findPlugin(): string | undefined {
  const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
  return [
    `/usr/lib/${arch}-linux-gnu/mosquitto_dynamic_security.so`,
    '/usr/lib/mosquitto_dynamic_security.so',
    '/usr/local/lib/mosquitto_dynamic_security.so',
  ].find((p) => existsSync(p));
}

/** (Re)creates a Mosquitto password file holding one login, with mosquitto_passwd, as an operator sets one up. */
export function makePasswordFile(path: string, username: string, password: string): void {
  const passwd = findBinary(['mosquitto_passwd', '/usr/bin/mosquitto_passwd']);
  if (passwd === undefined) throw new Error('mosquitto_passwd is not installed');
  const made = spawnSync(passwd, ['-c', '-b', path, username, password], { encoding: 'utf8' });
  if (made.status !== 0) throw new Error(`mosquitto_passwd failed: ${made.stderr}`);
}

/** True when mosquitto, mosquitto_ctrl and the dynamic-security plugin are installed. */
export function mosquittoInstalled(): boolean {
  return (
    findBinary(['mosquitto', '/usr/sbin/mosquitto']) !== undefined &&
    findBinary(['mosquitto_ctrl', '/usr/bin/mosquitto_ctrl']) !== undefined &&
    findPlugin() !== undefined
  );
}

/**
 * Starts mosquitto with manifests/mosquitto/mosquitto.conf (its listener moved to
 * 127.0.0.1 and a free port, its state to a temporary folder) and a dynamic-security
 * file holding one admin login, as `mosquitto_ctrl dynsec init` makes it.
 */
export async function startMosquitto(
  options: { accounts?: MosquittoAccounts } = {},
): Promise<MosquittoBroker> {
  let lastError: unknown;
  // A free port can be taken between probing and listening: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnFreePort(options.accounts ?? 'dynsec');
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startOnFreePort(accounts: MosquittoAccounts): Promise<MosquittoBroker> {
  if (!mosquittoInstalled())
    throw new Error(
      'mosquitto (with mosquitto_ctrl and its dynamic-security plugin) is not installed: apt-get install -y mosquitto',
    );
  const binary = findBinary(['mosquitto', '/usr/sbin/mosquitto'])!;
  const dir = await mkdtemp(join(tmpdir(), 'linesight-mosquitto-'));
  const username = 'linesight-cloud';
  const password = randomBytes(18).toString('base64url');
  const passwordFile = join(dir, 'cloud-password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  const replace = (text: string, pattern: RegExp, by: string) => {
    if (!pattern.test(text))
      throw new Error(`the shipped mosquitto configuration has no ${pattern}`);
    return text.replace(pattern, by);
  };
  const port = await freePort();
  let devicePort = port;
  let config: string;
  let files: { configDir: string; pidFile: string } | undefined;
  if (accounts === 'files') {
    // As an operator would start it: the cloud's login made with mosquitto_passwd, no ACL yet;
    // the cloud writes both files at its start.
    const passwords = join(dir, 'linesight-passwords');
    makePasswordFile(passwords, username, password);
    await writeFile(join(dir, 'linesight-acl'), '', { mode: 0o640 });
    devicePort = await freePort();
    files = { configDir: dir, pidFile: join(dir, 'mosquitto.pid') };
    config = replace(
      await readFile(SHIPPED_FILES_CONFIG, 'utf8'),
      /^listener 1883$/m,
      `listener ${devicePort} 127.0.0.1`,
    );
    config = replace(config, /^listener 1884 127\.0\.0\.1$/m, `listener ${port} 127.0.0.1`);
    config = replace(config, /^password_file \S+$/m, `password_file ${passwords}`);
    config = replace(config, /^acl_file \S+$/m, `acl_file ${join(dir, 'linesight-acl')}`);
    config = replace(config, /^pid_file \S+$/m, `pid_file ${files.pidFile}`);
    // Started as root, mosquitto drops to `user`; this test's files belong to the caller.
    config = replace(
      config,
      /^user \S+$/m,
      process.getuid?.() === 0 ? 'user root' : '# user: mosquitto runs as its caller',
    );
  } else {
    const ctrl = findBinary(['mosquitto_ctrl', '/usr/bin/mosquitto_ctrl'])!;
    const plugin = findPlugin()!;
    const dynsec = join(dir, 'dynamic-security.json');
    const init = spawnSync(ctrl, ['dynsec', 'init', dynsec, username, password], {
      encoding: 'utf8',
    });
    if (init.status !== 0) throw new Error(`mosquitto_ctrl dynsec init failed: ${init.stderr}`);
    config = replace(
      await readFile(SHIPPED_CONFIG, 'utf8'),
      /^listener 1883$/m,
      `listener ${port} 127.0.0.1`,
    );
    config = replace(config, /^plugin \S+$/m, `plugin ${plugin}`);
    config = replace(config, /^plugin_opt_config_file \S+$/m, `plugin_opt_config_file ${dynsec}`);
    // Started as root, mosquitto drops to the `mosquitto` user, which cannot read a private temp folder.
    if (process.getuid?.() === 0) config += '\nuser root\n';
  }
  config = replace(config, /^persistence_location \S+$/m, `persistence_location ${dir}/`);
  const configFile = join(dir, 'mosquitto.conf');
  await writeFile(configFile, config);
  const url = `mqtt://127.0.0.1:${port}`;
  const output: string[] = [];
  let child: ChildProcess | undefined;

  const launch = async () => {
    if (child !== undefined) return;
    const started = spawn(binary, ['-c', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = started;
    const keep = (line: string) => {
      output.push(line);
      if (output.length > 1000) output.shift();
    };
    createInterface({ input: started.stdout! }).on('line', keep);
    createInterface({ input: started.stderr! }).on('line', keep);
    await waitForBroker(url, started, output, { name: 'mosquitto', username, password });
  };
  const halt = async () => {
    if (child !== undefined) await stopChild(child);
    child = undefined;
  };
  try {
    await launch();
  } catch (err) {
    await halt();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    accounts,
    get pid() {
      return child?.pid;
    },
    url,
    deviceUrl: `mqtt://127.0.0.1:${devicePort}`,
    ...files,
    username,
    password,
    passwordFile,
    output,
    halt,
    resume: launch,
    stop: async () => {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
