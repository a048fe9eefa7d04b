import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelContract } from '@linesight/vision';
import { meanScoreOnnx } from '@linesight/testkit/onnx';
import { readContractFromFile } from './onnx-file-contract.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'linesight-onnx-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileWith(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

describe('readContractFromFile', () => {
  it('reads the same contract as the in-memory reader', async () => {
    const onnx = meanScoreOnnx({ side: 16, threshold: 0.42 });
    const contract = await readContractFromFile(await fileWith('ok.onnx', onnx));
    expect(contract).toEqual(readModelContract(onnx));
    expect(contract.threshold).toBe(0.42);
  });

  it('refuses files that are not well-framed ONNX models', async () => {
    const onnx = meanScoreOnnx({ side: 16, threshold: 0.5 });
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['text', Buffer.from('this is not a model')],
      ['truncated', onnx.subarray(0, onnx.length - 10)],
      ['zeros', new Uint8Array(4096)],
      ['huge length', Buffer.from([0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f])],
    ];
    for (const [name, bytes] of cases) {
      await expect(readContractFromFile(await fileWith(name, bytes)), name).rejects.toMatchObject({
        code: 'ERR_MODEL_CONTRACT',
      });
    }
  });
});
