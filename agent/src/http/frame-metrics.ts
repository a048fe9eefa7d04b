import type { FrameResult, Verdict } from '@linesight/protocol';
import { Histogram } from './histogram.ts';

/** Per-verdict counts and latency histograms of every frame result, for /metrics. */
export class FrameMetrics {
  readonly verdicts: Record<Verdict, number> = { good: 0, defect: 0, unknown: 0 };
  /** Arrival at the agent to verdict. */
  readonly total = new Histogram();
  readonly preprocess = new Histogram();
  readonly inference = new Histogram();

  observe(result: FrameResult): void {
    this.verdicts[result.verdict]++;
    this.total.observe(result.latencyMs.total);
    if (result.verdict !== 'unknown') {
      this.preprocess.observe(result.latencyMs.preprocess);
      this.inference.observe(result.latencyMs.inference);
    }
  }
}
