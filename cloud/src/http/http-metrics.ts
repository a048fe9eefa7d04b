import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { renderPrometheus, type MetricSample } from '../metrics.ts';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

// Process metrics (CPU, memory, event-loop lag, GC) are per process: one collector however
// many clouds a process runs (tests do), so none of them piles up observers.
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * The cloud's Prometheus metrics through prom-client: a latency histogram
 * of every HTTP request (labels kept to bounded sets: the method, the
 * route's pattern, never its URL, and the status class), the Node.js process
 * metrics, and the cloud's own samples, rendered under their existing names.
 */
export class HttpMetrics {
  readonly #registry = new Registry();
  readonly #requests: Histogram<'method' | 'route' | 'status'>;

  constructor() {
    this.#requests = new Histogram({
      name: 'linesight_http_request_duration_seconds',
      help: 'REST request latency, from arrival to the response sent, by method, route pattern and status class',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.#registry],
    });
  }

  /** Counts one answered request; `route` is the matched pattern (undefined: no route matched). */
  observe(method: string, route: string | undefined, statusCode: number, seconds: number): void {
    this.#requests.observe(
      {
        method: METHODS.has(method) ? method : 'OTHER',
        route: route ?? 'unmatched',
        status: `${Math.floor(statusCode / 100)}xx`,
      },
      seconds,
    );
  }

  /** The text exposition (format 0.0.4) of `samples`, the request histogram and the process. */
  async render(samples: readonly MetricSample[]): Promise<string> {
    const [own, process] = await Promise.all([
      this.#registry.metrics(),
      processMetrics().metrics(),
    ]);
    return `${renderPrometheus(samples)}${own}\n${process}`;
  }
}
