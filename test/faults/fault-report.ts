import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { percent, type FaultFigures } from './fault-summary.ts';
import { faultLineGuard } from './fault-settings.ts';
import { availabilityShare } from './verdict-availability.ts';

export type { FaultFigures } from './fault-summary.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where each fault test leaves its figures for the run's summary table. */
    faultReportDir: string;
  }
}

/**
 * Leaves one fault's figures for the summary written at the end of the run; a run with
 * a line-guard run (LINESIGHT_FAULT_LINE_GUARD, default 1) marks each row `[line guard]`.
 */
export async function recordFault(
  figures: Omit<FaultFigures, 'loadAvg'> & { loadAvg?: number[] },
): Promise<void> {
  const row: FaultFigures = {
    ...figures,
    fault: faultLineGuard() ? `${figures.fault} [line guard]` : figures.fault,
    loadAvg: figures.loadAvg ?? loadavg(),
  };
  const name = `${Date.now()}-${randomBytes(3).toString('hex')}.json`;
  await writeFile(join(inject('faultReportDir'), name), JSON.stringify(row));
  const a = row.availability;
  console.log(
    `[fault] ${row.fault}: availability ${percent(availabilityShare(a))} (${a.inBudget}/${a.frames} frames), ` +
      `recovery ${row.recoverySec.toFixed(1)} s, records lost ${row.recordsLost} (+${row.recordsLostInFlight} in flight), ` +
      `duplicated ${row.recordsDuplicated}, unscored good ${a.unscoredGood}; ${row.notes}`,
  );
}
