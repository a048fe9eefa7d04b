import { Help, type Command, type Option } from 'commander';

const plain = new Help();

/**
 * Marks required options "(required)" in `--help` of a command and all its
 * subcommands (commander itself shows no difference between required and optional).
 */
export function markRequiredOptions(command: Command): Command {
  command.configureHelp({
    optionDescription: (option: Option) => {
      const description = plain.optionDescription(option);
      return option.mandatory ? `(required) ${description}` : description;
    },
  });
  for (const sub of command.commands) markRequiredOptions(sub);
  return command;
}
