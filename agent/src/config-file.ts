import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parseDocument } from 'yaml';
import { LinesightError, describeError } from '@linesight/protocol';

/**
 * Reads the agent's local configuration file (YAML, or JSON, which is YAML
 * too; `.json` files are parsed strictly as JSON). The values are validated
 * later with the rest of the configuration, which reports every problem at
 * once; this only reports a file that cannot be read or parsed.
 */
export async function readAgentConfigFile(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new LinesightError('ERR_AGENT_CONFIG', `cannot read config file ${path}`, { cause: err });
  }
  let value: unknown;
  if (extname(path).toLowerCase() === '.json') {
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new LinesightError(
        'ERR_AGENT_CONFIG',
        `config file ${path} is not valid JSON: ${describeError(err)}`,
      );
    }
  } else {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const problems = doc.errors.map((e) => e.message.split('\n')[0] ?? e.message);
      throw new LinesightError(
        'ERR_AGENT_CONFIG',
        `config file ${path} is not valid YAML:\n  ${problems.join('\n  ')}`,
        { details: { problems } },
      );
    }
    value = doc.toJS();
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new LinesightError(
      'ERR_AGENT_CONFIG',
      `config file ${path} must hold a mapping of settings (e.g. outputs:, http:)`,
    );
  }
  return value as Record<string, unknown>;
}
