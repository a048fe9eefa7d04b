import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { benchStartupCommand } from './bench-startup.ts';

// Each of these is refused before anything is started (no cloud, no agent).
function run(...args: string[]): Promise<unknown> {
  return benchStartupCommand().exitOverride().parseAsync(args, { from: 'user' });
}

describe('bench startup options', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-startup-test-'));
    await writeFile(join(dir, 'linesight.js'), '');
    await writeFile(join(dir, 'notes.txt'), '');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the line guard options to --line-guard', async () => {
    await expect(run('--bin', join(dir, 'linesight.js'))).rejects.toMatchObject({
      code: 'ERR_CLI_USAGE',
      message: expect.stringMatching(/need --line-guard/),
    });
    await expect(run('--camera-frames', dir)).rejects.toMatchObject({ code: 'ERR_CLI_USAGE' });
  });

  it('refuses the agent-against-a-cloud options with --line-guard, naming them', async () => {
    await expect(run('--line-guard', '--model', 'm.onnx', '--frames', '5')).rejects.toMatchObject({
      code: 'ERR_CLI_USAGE',
      message: expect.stringMatching(/--model, --frames apply to the agent against a cloud/),
    });
  });

  it('checks the builds and the frames folder before starting a guard', async () => {
    const bin = join(dir, 'linesight.js');
    await expect(run('--line-guard', '--bin', join(dir, 'none.js'))).rejects.toMatchObject({
      code: 'ERR_CLI_USAGE',
      message: expect.stringMatching(/--bin: no file at .*none\.js/),
    });
    await expect(run('--line-guard', '--bin', bin, bin)).rejects.toMatchObject({
      code: 'ERR_CLI_USAGE',
      message: expect.stringMatching(/names .*linesight\.js twice/),
    });
    await expect(run('--line-guard', '--bin', bin, '--camera-frames', dir)).rejects.toMatchObject({
      code: 'ERR_CLI_USAGE',
      message: expect.stringMatching(/no \*\.jpg in/),
    });
  });
});
