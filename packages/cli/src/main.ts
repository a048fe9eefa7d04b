import { Command, CommanderError } from 'commander';
import { describeError } from '@linesight/protocol';
import { markRequiredOptions } from './help.ts';

/**
 * Every command, in the order `--help` lists them, each loaded only when used: a command
 * imports its whole app (the cloud, the agent, training, the simulated fleet), and a
 * process runs one. Loading all of them cost `linesight agent` about a third of its start
 * (and a line guard restarts its worker with the same command).
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  demo: async () => (await import('./commands/demo-command.ts')).demoCommand(),
  cloud: async () => (await import('./commands/cloud-command.ts')).cloudCommand(),
  agent: async () => (await import('./commands/agent-command.ts')).agentCommand(),
  sim: async () => (await import('./commands/sim-command.ts')).simCommand(),
  soak: async () => (await import('./commands/soak-command.ts')).soakCommand(),
  model: async () => (await import('./commands/model-command.ts')).modelCommand(),
  device: async () => (await import('./commands/device-command.ts')).deviceCommand(),
  predict: async () => (await import('./commands/predict-command.ts')).predictCommand(),
  rollout: async () => (await import('./commands/rollout-command.ts')).rolloutCommand(),
  review: async () => (await import('./commands/review-command.ts')).reviewCommand(),
  retrain: async () => (await import('./commands/retrain-command.ts')).retrainCommand(),
  token: async () => (await import('./commands/token-command.ts')).tokenCommand(),
  reader: async () => (await import('./commands/reader-command.ts')).readerCommand(),
  keys: async () => (await import('./commands/keys-command.ts')).keysCommand(),
  bench: async () => (await import('./commands/bench-command.ts')).benchCommand(),
};

const program = new Command('linesight')
  .description('Linesight: edge-AI visual defect detection for manufacturing lines')
  .version('0.1.0')
  // Root options only before the subcommand, so `model publish --version 1.0.0` reaches publish.
  .enablePositionalOptions()
  .showHelpAfterError();

// A named command loads alone; anything else (`--help`, `help`, a typo to suggest a fix
// for) gets them all.
const named = process.argv[2];
const wanted =
  named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const name of wanted) program.addCommand(await COMMANDS[name]!());
markRequiredOptions(program);

program.exitOverride();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode);
  console.error(`linesight: ${describeError(err)}`);
  process.exit(1);
}
