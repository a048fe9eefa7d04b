// A uPlot line chart of several series over time, with dashed level lines (loaded only by the pages that chart).
import { useEffect, useRef } from 'preact/hooks';
import { html } from './ui.js';

const COLORS = ['#2563eb', '#059669', '#9333ea', '#ea580c', '#0891b2', '#be123c'];
const LEVEL_COLORS = { warning: '#d97706', alert: '#dc2626' };

let cssLoaded = null;
function ensureCss() {
  cssLoaded ??= new Promise((resolve) => {
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = '/vendor/uplot.css';
    link.onload = link.onerror = resolve;
    document.head.append(link);
  });
  return cssLoaded;
}

/**
 * `times` in seconds; `series` [{ label, values }] (null leaves a gap);
 * `levels` [{ label, value, kind: 'warning' | 'alert' }] drawn as dashed lines;
 * `log` for unbounded statistics (an asinh scale).
 */
export function LineChart({ title, times, series, levels = [], digits = 2, log = false, testid }) {
  const box = useRef(null);
  const plot = useRef(null);
  const data = [
    times,
    ...series.map((s) => s.values),
    ...levels.map((l) => times.map(() => l.value)),
  ];
  const shape = `${series.map((s) => s.label).join('|')}/${levels.map((l) => l.value).join('|')}`;
  useEffect(() => {
    let live = true;
    Promise.all([import('uplot'), ensureCss()]).then(([{ default: UPlot }]) => {
      if (!live || !box.current) return;
      plot.current = new UPlot(
        {
          width: box.current.clientWidth || 420,
          height: 190,
          scales: {
            // One point alone would get a scale of years around it: pad it by a minute instead.
            x: {
              time: true,
              range: (_u, min, max) => (min === max ? [min - 60, max + 60] : [min, max]),
            },
            // Level lines are data too, so the scale always shows them. `log`: linear near 0 and
            // logarithmic above the first level, so a PSI of 8 does not flatten the levels.
            y: log
              ? {
                  distr: 4,
                  asinh: levels[0]?.value ?? 0.1,
                  range: (_u, _min, max) => [0, (max || 1) * 1.5],
                }
              : { range: (_u, _min, max) => [0, (max || 1) * 1.1] },
          },
          legend: { show: true, live: false },
          series: [
            {},
            ...series.map((s, i) => ({
              label: s.label,
              stroke: COLORS[i % COLORS.length],
              width: 2,
              points: { show: times.length < 40, size: 5 },
            })),
            ...levels.map((l) => ({
              label: l.label,
              stroke: LEVEL_COLORS[l.kind] ?? '#6b7280',
              width: 1.5,
              dash: [6, 4],
              points: { show: false },
            })),
          ],
          axes: [
            {},
            {
              size: 52,
              values: (_u, ticks) =>
                ticks.map((t) => (t === null || t < 0 ? '' : t.toFixed(digits))),
            },
          ],
        },
        data,
        box.current,
      );
    });
    return () => {
      live = false;
      plot.current?.destroy();
      plot.current = null;
    };
  }, [shape]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [
    times.length,
    times[times.length - 1],
    series.map((s) => s.values[s.values.length - 1]).join(),
  ]);
  return html`<figure class="chart" data-testid=${testid}>
    <figcaption>${title}</figcaption>
    <div ref=${box} role="img" aria-label=${`${title} over time`}></div>
  </figure>`;
}
