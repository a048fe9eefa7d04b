import { Command, CommanderError } from 'commander';
import { describe, expect, it } from 'vitest';
import { cloudCommand } from './commands/cloud-command.ts';
import { logLevelOption } from './options.ts';

function quiet(command: Command): { command: Command; errors: string[] } {
  const errors: string[] = [];
  command.exitOverride().configureOutput({ writeErr: (s) => errors.push(s), writeOut: () => {} });
  return { command, errors };
}

describe('--log-level', () => {
  it('takes a valid level and defaults', () => {
    const { command } = quiet(new Command('x').addOption(logLevelOption('warn')));
    expect(command.parse([], { from: 'user' }).opts()).toEqual({ logLevel: 'warn' });
    expect(command.parse(['--log-level', 'debug'], { from: 'user' }).opts()).toEqual({
      logLevel: 'debug',
    });
  });

  it('refuses an unknown level before anything starts, listing the valid ones', async () => {
    const { command, errors } = quiet(cloudCommand());
    const err = await command
      .parseAsync(['--log-level', 'verbose', '--http-port', '0'], { from: 'user' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommanderError);
    expect(errors.join('')).toContain(
      "argument 'verbose' is invalid. Allowed choices are fatal, error, warn, info, debug, trace, silent",
    );
  });
});

describe('linesight cloud --max-artifact-downloads', () => {
  it('refuses a limit below 1 before anything starts', async () => {
    const { command, errors } = quiet(cloudCommand());
    const err = await command
      .parseAsync(['--max-artifact-downloads', '0', '--http-port', '0'], { from: 'user' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommanderError);
    expect(errors.join('')).toContain(
      "option '--max-artifact-downloads <n>' argument '0' is invalid. expected a whole number of at least 1",
    );
  });
});
