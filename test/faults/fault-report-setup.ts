import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { REPO_ROOT } from '../helpers/linesight-process.ts';
import { markdownTable, summarize, type FaultFigures } from './fault-summary.ts';
import { frameBudgetMs } from './fault-settings.ts';

let dir: string | undefined;

/** Gives the fault tests a folder for their figures. */
export async function setup(project: TestProject): Promise<void> {
  dir = await mkdtemp(join(tmpdir(), 'linesight-faults-'));
  project.provide('faultReportDir', dir);
}

/**
 * Writes the run's summary: `fault-report.json` and `fault-report.md` in
 * LINESIGHT_FAULT_REPORT_DIR (default `fault-results/` in the repository),
 * and the table on stdout.
 */
export async function teardown(): Promise<void> {
  if (dir === undefined) return;
  const rows: FaultFigures[] = [];
  for (const name of (await readdir(dir)).sort())
    rows.push(JSON.parse(await readFile(join(dir, name), 'utf8')) as FaultFigures);
  await rm(dir, { recursive: true, force: true });
  if (rows.length === 0) return;
  const out = process.env.LINESIGHT_FAULT_REPORT_DIR ?? join(REPO_ROOT, 'fault-results');
  await mkdir(out, { recursive: true });
  const budgetMs = frameBudgetMs();
  const table = markdownTable(rows, budgetMs);
  await writeFile(
    join(out, 'fault-report.json'),
    `${JSON.stringify({ at: new Date().toISOString(), budgetMs, loadAvgAtEnd: loadavg(), ...summarize(rows) }, null, 2)}\n`,
  );
  await writeFile(join(out, 'fault-report.md'), `${table}\n`);
  process.stdout.write(`\nfault suite summary (${join(out, 'fault-report.md')}):\n\n${table}\n\n`);
}
