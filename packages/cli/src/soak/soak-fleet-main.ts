// The simulated-fleet process of `linesight soak`: started by the soak, never by a user.
import { parseSoakFleetArgs, runSoakFleet } from './soak-fleet-worker.ts';
import { ADMIN_TOKEN_ENV, envAdminToken } from '../admin-token.ts';

const adminToken = envAdminToken();
if (adminToken === undefined) throw new Error(`${ADMIN_TOKEN_ENV} is not set`);
await runSoakFleet({ ...parseSoakFleetArgs(process.argv.slice(2)), adminToken });
