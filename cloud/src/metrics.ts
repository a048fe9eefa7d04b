/** One sample of a Prometheus metric. */
export interface MetricSample {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  values: { labels?: Record<string, string>; value: number }[];
}

/** Renders samples in the Prometheus text exposition format (version 0.0.4). */
export function renderPrometheus(samples: readonly MetricSample[]): string {
  const lines: string[] = [];
  for (const s of samples) {
    lines.push(`# HELP ${s.name} ${s.help}`, `# TYPE ${s.name} ${s.type}`);
    for (const v of s.values) {
      const labels =
        v.labels === undefined
          ? ''
          : `{${Object.entries(v.labels)
              .map(([k, val]) => `${k}="${escapeLabel(val)}"`)
              .join(',')}}`;
      lines.push(`${s.name}${labels} ${Number.isFinite(v.value) ? v.value : 0}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
