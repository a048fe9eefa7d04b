// The suite's knobs, read from the environment once: quick runs shorten the faults.

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, got ${raw}`);
  return value;
}

/** A verdict later than this after capture is useless to a reject gate (LINESIGHT_FAULT_FRAME_BUDGET_MS, default 1000). */
export function frameBudgetMs(): number {
  return numberFromEnv('LINESIGHT_FAULT_FRAME_BUDGET_MS', 1000);
}

/** How long the cloud stays frozen with SIGSTOP (LINESIGHT_FAULT_FREEZE_SEC, default 60 as the issue asks). */
export function freezeSec(): number {
  return numberFromEnv('LINESIGHT_FAULT_FREEZE_SEC', 60);
}

/** How long one device stays partitioned from the cloud (LINESIGHT_FAULT_PARTITION_SEC, default 120). */
export function partitionSec(): number {
  return numberFromEnv('LINESIGHT_FAULT_PARTITION_SEC', 120);
}

/** Camera frame rate of each device in the suite (LINESIGHT_FAULT_FPS, default 10). */
export function faultFps(): number {
  return numberFromEnv('LINESIGHT_FAULT_FPS', 10);
}

/**
 * Run every agent of the suite as a line guard (`linesight agent --line-guard`), as the shipped
 * systemd unit runs it: kill -9 then targets its worker, the scoring process
 * (LINESIGHT_FAULT_LINE_GUARD, default 1; 0 runs the bare agent).
 */
export function faultLineGuard(): boolean {
  const raw = process.env.LINESIGHT_FAULT_LINE_GUARD;
  if (raw === undefined || raw === '' || raw === '1') return true;
  if (raw === '0') return false;
  throw new Error(`LINESIGHT_FAULT_LINE_GUARD must be 0 or 1, got ${raw}`);
}

/**
 * Where each agent's camera runs (LINESIGHT_FAULT_CAMERA): `process` (default), a camera
 * process per agent sending MJPEG with capture times, so the figures are the agent's alone;
 * `synthetic`, rendered inside the agent (or the guard) as before.
 */
export function faultCamera(): 'process' | 'synthetic' {
  const raw = process.env.LINESIGHT_FAULT_CAMERA;
  if (raw === undefined || raw === '' || raw === 'process') return 'process';
  if (raw === 'synthetic') return 'synthetic';
  throw new Error(`LINESIGHT_FAULT_CAMERA must be process or synthetic, got ${raw}`);
}
