import { Command, CommanderError } from 'commander';
import { describeError } from '@linesight/protocol';
import { cloudCommand } from './commands/cloud-command.ts';
import { agentCommand } from './commands/agent-command.ts';
import { simCommand } from './commands/sim-command.ts';
import { soakCommand } from './commands/soak-command.ts';
import { modelCommand } from './commands/model-command.ts';
import { deviceCommand } from './commands/device-command.ts';
import { demoCommand } from './commands/demo-command.ts';
import { benchCommand } from './commands/bench-command.ts';
import { predictCommand } from './commands/predict-command.ts';
import { rolloutCommand } from './commands/rollout-command.ts';
import { reviewCommand } from './commands/review-command.ts';
import { retrainCommand } from './commands/retrain-command.ts';
import { markRequiredOptions } from './help.ts';
import { tokenCommand } from './commands/token-command.ts';
import { readerCommand } from './commands/reader-command.ts';
import { keysCommand } from './commands/keys-command.ts';

const program = new Command('linesight')
  .description('Linesight: edge-AI visual defect detection for manufacturing lines')
  .version('0.1.0')
  // Root options only before the subcommand, so `model publish --version 1.0.0` reaches publish.
  .enablePositionalOptions()
  .showHelpAfterError()
  .addCommand(demoCommand())
  .addCommand(cloudCommand())
  .addCommand(agentCommand())
  .addCommand(simCommand())
  .addCommand(soakCommand())
  .addCommand(modelCommand())
  .addCommand(deviceCommand())
  .addCommand(predictCommand())
  .addCommand(rolloutCommand())
  .addCommand(reviewCommand())
  .addCommand(retrainCommand())
  .addCommand(tokenCommand())
  .addCommand(readerCommand())
  .addCommand(keysCommand())
  .addCommand(benchCommand());
markRequiredOptions(program);

program.exitOverride();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`linesight: ${describeError(err)}`);
  process.exit(1);
}
