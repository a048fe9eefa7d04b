import type { Histogram } from './histogram.ts';

type Labels = Record<string, string>;

/** Builds a Prometheus text exposition (format 0.0.4), one metric family at a time. */
export class PrometheusText {
  readonly #lines: string[] = [];

  /** A counter or gauge family with one sample per label set. */
  family(
    name: string,
    type: 'counter' | 'gauge',
    help: string,
    samples: readonly { labels?: Labels; value: number }[],
  ): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const s of samples) this.#lines.push(`${name}${labelText(s.labels)} ${num(s.value)}`);
    return this;
  }

  /** A histogram family (milliseconds) with one histogram per label set. */
  histogram(
    name: string,
    help: string,
    series: readonly { labels?: Labels; histogram: Histogram }[],
  ): this {
    this.#lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    for (const { labels = {}, histogram } of series) {
      for (const b of histogram.cumulative())
        this.#lines.push(`${name}_bucket${labelText({ ...labels, le: String(b.le) })} ${b.count}`);
      this.#lines.push(
        `${name}_bucket${labelText({ ...labels, le: '+Inf' })} ${histogram.count}`,
        `${name}_sum${labelText(labels)} ${num(histogram.sumMs)}`,
        `${name}_count${labelText(labels)} ${histogram.count}`,
      );
    }
    return this;
  }

  toString(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

function labelText(labels: Labels | undefined): string {
  if (labels === undefined) return '';
  const parts = Object.entries(labels).map(
    ([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
  );
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function num(value: number): string {
  return Number.isFinite(value) ? String(Math.round(value * 1000) / 1000) : 'NaN';
}
