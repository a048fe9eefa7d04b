// The suite's summary: pure functions, used by the global teardown (which must not import vitest).
import { availabilityShare, sumAvailability, type Availability } from './verdict-availability.ts';

/** The figures of one fault, one row of the summary table. */
export interface FaultFigures {
  /** Short name of the fault, e.g. `cloud kill -9 mid-flood`. */
  fault: string;
  devices: number;
  /** How long the fault itself lasted (frozen, partitioned), s; 0 for an instant one. */
  faultSec: number;
  /** From the end of the fault until the fleet was whole again (connected, scoring, caught up), s. */
  recoverySec: number;
  /** Verdict-log records the cloud never got, beyond the documented in-flight window. */
  recordsLost: number;
  /** Verdict-log records lost in the documented in-flight window (the unflushed tail of a killed agent). */
  recordsLostInFlight: number;
  /** Verdict-log records the cloud holds twice. */
  recordsDuplicated: number;
  /** What the line received over the fault's window. */
  availability: Availability;
  /** 1, 5 and 15 minute load averages when the fault ended. */
  loadAvg: number[];
  /** Anything else measured (connects/s, bytes resumed, ...). */
  notes: string;
}

/** A share as a percentage with enough digits to tell 99.99 % from 100 %. */
export function percent(share: number): string {
  return `${(share * 100).toFixed(3)} %`;
}

/** The summary of a run: every fault's row and the totals. */
export function summarize(rows: readonly FaultFigures[]): {
  rows: readonly FaultFigures[];
  total: Availability;
  availability: number;
  availabilityWhileAgentsRan: number;
  /** Of the frames the cameras took (neither an agent down nor a camera stalled). */
  availabilityOfFramesTaken: number;
} {
  const total = sumAvailability(rows.map((r) => r.availability));
  const whileRunning = total.frames - total.lostAgentDown;
  const taken = whileRunning - total.lostStalled;
  return {
    rows,
    total,
    availability: availabilityShare(total),
    availabilityWhileAgentsRan: whileRunning === 0 ? 1 : total.inBudget / whileRunning,
    availabilityOfFramesTaken: taken === 0 ? 1 : total.inBudget / taken,
  };
}

/** The summary table in markdown. */
export function markdownTable(rows: readonly FaultFigures[], budgetMs: number): string {
  const s = summarize(rows);
  const lines = [
    `| fault | devices | fault s | recovery s | frames | verdicts in budget (${budgetMs} ms) | late | lost (in process / agent down / stalled) | camera missed | line duplicates | unknown | unscored good | records lost (+ in flight) | records duplicated | load avg 1/5/15 | notes |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |',
  ];
  for (const r of rows) {
    const a = r.availability;
    lines.push(
      `| ${r.fault} | ${r.devices} | ${r.faultSec.toFixed(0)} | ${r.recoverySec.toFixed(1)} | ${a.frames} | ${a.inBudget} (${percent(availabilityShare(a))}) | ${a.late} | ${a.lostInProcess} / ${a.lostAgentDown} / ${a.lostStalled} | ${a.cameraMissed} | ${a.duplicates} | ${a.unknown} | ${a.unscoredGood} | ${r.recordsLost} (+${r.recordsLostInFlight}) | ${r.recordsDuplicated} | ${r.loadAvg.map((l) => l.toFixed(1)).join(' / ')} | ${r.notes} |`,
    );
  }
  const t = s.total;
  lines.push(
    '',
    `**Verdict availability over every fault: ${percent(s.availability)}** (${t.inBudget} of ${t.frames} frames with a verdict at the line within ${budgetMs} ms); ` +
      `${percent(s.availabilityWhileAgentsRan)} of the frames due while an agent process ran; ` +
      `${percent(s.availabilityOfFramesTaken)} of the frames the cameras took. ` +
      `Unscored good verdicts: ${t.unscoredGood}. ` +
      `Frames the camera processes missed themselves (starved; not in the frames above): ${t.cameraMissed}.`,
  );
  return lines.join('\n');
}
