import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { freePort, stopChild, waitForBroker } from '../../packages/cli/src/bench/broker-child.ts';

/** An MQTT broker standing in for the plant's, in its own process on 127.0.0.1. */
export interface PlantBroker {
  kind: 'mosquitto' | 'aedes';
  url: string;
  stop(): Promise<void>;
}

const AEDES_MAIN = fileURLToPath(new URL('./aedes-broker-main.ts', import.meta.url));

/** The mosquitto binary, if installed (Debian puts it in /usr/sbin). */
function findMosquitto(): string | undefined {
  for (const candidate of ['mosquitto', '/usr/sbin/mosquitto', '/usr/local/sbin/mosquitto']) {
    const probe = spawnSync(candidate, ['-h'], { stdio: 'ignore' });
    if (probe.error === undefined) return candidate;
  }
  return undefined;
}

/**
 * Starts Debian's mosquitto on a free port with a generated config
 * (listener on 127.0.0.1 only, anonymous, no persistence). Without mosquitto
 * it falls back to a standalone aedes broker in a child process, and says so
 * on stderr, unless LINESIGHT_REQUIRE_MOSQUITTO=1 (CI), which makes it fail.
 */
export async function startPlantBroker(): Promise<PlantBroker> {
  const binary = findMosquitto();
  if (binary === undefined) {
    if (process.env.LINESIGHT_REQUIRE_MOSQUITTO === '1') {
      throw new Error(
        'mosquitto is not installed but LINESIGHT_REQUIRE_MOSQUITTO=1: install it (apt-get install -y mosquitto) or unset the variable to fall back to aedes',
      );
    }
    process.stderr.write(
      'plant broker: mosquitto not found, falling back to a standalone aedes broker (install mosquitto to test against it)\n',
    );
    return startAedes();
  }
  let lastError: unknown;
  // A free port can be taken between probing and listening: try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startMosquitto(binary);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function startMosquitto(binary: string): Promise<PlantBroker> {
  const dir = await mkdtemp(join(tmpdir(), 'linesight-mosquitto-'));
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  await writeFile(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      '',
    ].join('\n'),
  );
  const child = spawn(binary, ['-c', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const keep = (line: string) => output.push(line);
  createInterface({ input: child.stdout! }).on('line', keep);
  createInterface({ input: child.stderr! }).on('line', keep);
  const url = `mqtt://127.0.0.1:${port}`;
  const stop = async () => {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitForBroker(url, child, output, { name: 'broker' });
  } catch (err) {
    await stop();
    throw err;
  }
  return { kind: 'mosquitto', url, stop };
}

async function startAedes(): Promise<PlantBroker> {
  const child = spawn(process.execPath, ['--import', 'tsx', AEDES_MAIN, '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => output.push(l));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output.push(line);
      const match = /^listening (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) =>
      reject(new Error(`aedes broker exited (${code}): ${output.slice(-10).join('\n')}`)),
    );
  });
  const url = `mqtt://127.0.0.1:${port}`;
  await waitForBroker(url, child, output, { name: 'broker' });
  return { kind: 'aedes', url, stop: () => stopChild(child) };
}
