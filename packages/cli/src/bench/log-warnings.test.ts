import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LogWarnings } from './log-warnings.ts';

describe('LogWarnings', () => {
  it('counts warn, error and fatal lines, keeps the first few and counts per message', () => {
    const echoed: string[] = [];
    const warnings = new LogWarnings({ keep: 2, echo: (l) => echoed.push(l) });
    const log = pino({ level: 'info' }, warnings);
    log.info('not kept');
    log.warn({ event: 'artifact_download.deferred', deferred: 3 }, 'downloads deferred');
    log.child({ component: 'rollouts' }).error('gate failed');
    log.warn('downloads deferred');
    log.fatal('down');
    const summary = warnings.summary();
    expect(summary).toMatchObject({ warn: 2, error: 1, fatal: 1 });
    expect(summary.first).toEqual([
      expect.objectContaining({
        level: 'warn',
        msg: 'downloads deferred',
        source: 'artifact_download.deferred',
      }),
      expect.objectContaining({ level: 'error', msg: 'gate failed', source: 'rollouts' }),
    ]);
    expect(summary.byMessage).toEqual({ 'downloads deferred': 2, 'gate failed': 1, down: 1 });
    // Every line still goes out, the info one too.
    expect(echoed).toHaveLength(5);
  });

  it('echoes and ignores a line that is not pino JSON', () => {
    const echoed: string[] = [];
    const warnings = new LogWarnings({ echo: (l) => echoed.push(l) });
    warnings.write('plain text\n');
    expect(echoed).toEqual(['plain text\n']);
    expect(warnings.summary()).toEqual({ warn: 0, error: 0, fatal: 0, first: [], byMessage: {} });
  });
});
