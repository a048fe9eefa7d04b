import type { ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import mqtt from 'mqtt';
import { terminateChild } from './child-process.ts';

/**
 * Connects (with the login, if given) until the broker in `child` answers, or
 * it exits, or 20 s pass; `output` holds its log lines for the error. `name`
 * names it in the errors (`mosquitto`, `broker`).
 */
export async function waitForBroker(
  url: string,
  child: ChildProcess,
  output: readonly string[],
  options: { name: string; username?: string; password?: string },
): Promise<void> {
  const login =
    options.username === undefined
      ? {}
      : { username: options.username, password: options.password };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(
        `${options.name} exited (${child.exitCode}): ${output.slice(-10).join('\n')}`,
      );
    try {
      const client = await mqtt.connectAsync(url, {
        ...login,
        reconnectPeriod: 0,
        connectTimeout: 1000,
      });
      await client.endAsync(true);
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(
          `${options.name} at ${url} did not answer: ${String(err)}\n${output.join('\n')}`,
        );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stops a broker child: SIGTERM, then SIGKILL after 5 s; resolves when the process has exited. */
export function stopChild(child: ChildProcess): Promise<void> {
  return terminateChild(child, 5000);
}

/** A free TCP port on 127.0.0.1 (it may be taken again before use: callers retry). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
