import { describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import type { Camera } from './camera/camera.ts';
import { runAgent } from './main.ts';

describe('runAgent', () => {
  it('refuses an unknown log level naming the valid ones, before reading anything', async () => {
    const err = await runAgent({
      deviceId: 'line-1',
      dataDir: '/nonexistent/linesight-agent',
      camera: {} as Camera,
      logLevel: 'verbose',
    }).catch((e: unknown) => e);
    expect(isLinesightError(err, 'ERR_AGENT_CONFIG')).toBe(true);
    expect((err as Error).message).toBe(
      'unknown log level "verbose"; valid levels: fatal, error, warn, info, debug, trace, silent',
    );
  });
});
