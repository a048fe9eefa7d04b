// The simulated-fleet process of `linesight bench rollout`: started by the bench, never by a user.
import { parseFleetWorkerArgs, runFleetWorker } from './rollout-fleet-worker.ts';
import { ADMIN_TOKEN_ENV, envAdminToken } from '../admin-token.ts';

const adminToken = envAdminToken();
if (adminToken === undefined) throw new Error(`${ADMIN_TOKEN_ENV} is not set`);
await runFleetWorker({ ...parseFleetWorkerArgs(process.argv.slice(2)), adminToken });
