import { describe, expect, it } from 'vitest';
import { HttpMetrics } from './http-metrics.ts';

describe('HttpMetrics', () => {
  it('renders the request histogram by method, route pattern and status class, beside the samples and the process', async () => {
    const metrics = new HttpMetrics();
    metrics.observe('GET', '/v1/devices/:id', 200, 0.003);
    metrics.observe('GET', '/v1/devices/:id', 404, 0.2);
    metrics.observe('BREW', undefined, 400, 0.0004);
    const text = await metrics.render([
      {
        name: 'linesight_devices',
        help: 'Provisioned devices',
        type: 'gauge',
        values: [{ value: 3 }],
      },
    ]);
    expect(text).toContain('# TYPE linesight_devices gauge\nlinesight_devices 3\n');
    expect(text).toContain('# TYPE linesight_http_request_duration_seconds histogram');
    expect(text).toMatch(
      /^linesight_http_request_duration_seconds_bucket\{le="0\.005",method="GET",route="\/v1\/devices\/:id",status="2xx"\} 1$/m,
    );
    expect(text).toMatch(
      /^linesight_http_request_duration_seconds_count\{method="GET",route="\/v1\/devices\/:id",status="4xx"\} 1$/m,
    );
    // Unknown methods and unmatched URLs collapse into one label value each: bounded sets.
    expect(text).toMatch(
      /^linesight_http_request_duration_seconds_count\{method="OTHER",route="unmatched",status="4xx"\} 1$/m,
    );
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    // Each metric once, even with two instances in one process.
    const again = await new HttpMetrics().render([]);
    expect(again.match(/^# TYPE process_cpu_user_seconds_total /gm)).toHaveLength(1);
  });
});
