// The simulated-fleet process of `linesight bench rollout`: started by the bench, never by a user.
import { parseFleetWorkerArgs, runFleetWorker } from './rollout-fleet-worker.ts';

const adminToken = process.env.LINESIGHT_ADMIN_TOKEN;
if (adminToken === undefined) throw new Error('LINESIGHT_ADMIN_TOKEN is not set');
await runFleetWorker({ ...parseFleetWorkerArgs(process.argv.slice(2)), adminToken });
