import { Command } from 'commander';
import { benchDriftCommand } from '../bench/drift-bench.ts';
import { benchAgentCommand } from './bench-agent.ts';
import { benchIngestCommand } from './bench-ingest.ts';
import { modelBenchCommand } from './bench-model.ts';
import { benchPredictCommand } from './bench-predict.ts';
import { benchRolloutCommand } from './bench-rollout.ts';
import { benchStartupCommand } from './bench-startup.ts';

/** `linesight bench`: benchmarks; each subcommand prints one JSON object on stdout. */
export function benchCommand(): Command {
  const bench = new Command('bench').description('benchmarks that print one JSON object on stdout');
  bench.addCommand(modelBenchCommand());
  bench.addCommand(benchAgentCommand());
  bench.addCommand(benchPredictCommand());
  bench.addCommand(benchRolloutCommand());
  bench.addCommand(benchIngestCommand());
  bench.addCommand(benchDriftCommand());
  bench.addCommand(benchStartupCommand());
  return bench;
}
