// The simulated-fleet process of `linesight soak`: started by the soak, never by a user.
import { parseSoakFleetArgs, runSoakFleet } from './soak-fleet-worker.ts';

const adminToken = process.env.LINESIGHT_ADMIN_TOKEN;
if (adminToken === undefined) throw new Error('LINESIGHT_ADMIN_TOKEN is not set');
await runSoakFleet({ ...parseSoakFleetArgs(process.argv.slice(2)), adminToken });
