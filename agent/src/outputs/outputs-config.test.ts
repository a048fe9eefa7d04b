import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { readAgentConfigFile } from '../config-file.ts';
import { loadAgentConfig } from '../config.ts';
import { checkOutputConfigs } from './outputs-config.ts';

const base = {
  deviceId: 'line-1',
  cloudUrl: 'http://127.0.0.1:8080',
  mqttUrl: 'mqtt://127.0.0.1:1883',
  username: 'line-1',
  password: 'secret',
  trustedKeys: [{ keyId: 'k', publicKeyPem: 'pem' }],
  dataDir: '/tmp/x',
};

describe('output configuration', () => {
  it('applies each kind its defaults', () => {
    const { outputs, problems } = checkOutputConfigs([
      { kind: 'mqtt', url: 'mqtt://10.0.0.5:1883' },
      {
        kind: 'modbus',
        host: '10.0.0.9',
        map: { defectCoil: 0, unknownCoil: 1, sequenceRegister: 2, scoreRegister: 0 },
      },
    ]);
    expect(problems).toEqual([]);
    expect(outputs[0]).toMatchObject({
      name: 'mqtt',
      topic: 'linesight/line/{deviceId}/verdicts',
      qos: 1,
      queueMax: 1000,
      dropPolicy: 'drop-oldest',
    });
    expect(outputs[1]).toMatchObject({
      name: 'modbus',
      port: 502,
      unitId: 1,
      pulseMs: 200,
      unknownAction: 'reject',
      maxAgeMs: 2000,
    });
  });

  it('reports every problem at once, with the path of each', () => {
    let caught: unknown;
    try {
      loadAgentConfig({
        ...base,
        outputs: [
          { kind: 'mqtt', url: 'http://wrong', topic: 'plant/#', qos: 3 },
          { kind: 'modbus', host: 'plc', map: { defectCoil: -1 } },
          { kind: 'printer' },
          { kind: 'webhook', url: 'http://x/hook' },
          { kind: 'webhook', url: 'http://y/hook' },
        ],
        http: { port: 70000 },
      });
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_AGENT_CONFIG')).toBe(true);
    const problems = (caught as { details: { problems: string[] } }).details.problems;
    const text = problems.join('\n');
    expect(text).toContain('http/port');
    expect(text).toContain('outputs/0/url');
    expect(text).toContain('outputs/0/qos');
    expect(text).toContain('outputs/1/map/defectCoil');
    expect(text).toContain('outputs/1/map');
    expect(text).toContain('outputs/2/kind: must be one of mqtt, modbus, webhook, command');
    expect(text).toContain('outputs/4/name: "webhook" is used twice');
  });

  it('refuses MQTT wildcards in the topic template', () => {
    const { problems } = checkOutputConfigs([{ kind: 'mqtt', url: 'mqtt://h', topic: 'a/+/b' }]);
    expect(problems).toEqual(['outputs/0/topic: must not contain the wildcards + or #']);
  });

  it('reads YAML and JSON files; a syntax error names the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'linesight-config-'));
    try {
      const yaml = join(dir, 'agent.yaml');
      await writeFile(
        yaml,
        'http:\n  port: 0\noutputs:\n  - kind: mqtt\n    url: mqtt://127.0.0.1:1883\n',
      );
      const parsed = await readAgentConfigFile(yaml);
      const config = loadAgentConfig({ ...base, ...parsed });
      expect(config.http).toEqual({
        port: 0,
        host: '127.0.0.1',
        recentVerdicts: 1000,
        sseMaxBufferedBytes: 1_048_576,
      });
      expect(config.outputs[0]).toMatchObject({ kind: 'mqtt', qos: 1 });

      const json = join(dir, 'agent.json');
      await writeFile(json, '{"outputs": [}');
      await expect(readAgentConfigFile(json)).rejects.toThrow(/agent\.json is not valid JSON/);
      const bad = join(dir, 'bad.yaml');
      await writeFile(bad, 'outputs:\n  - kind: mqtt\n   url: x\n');
      await expect(readAgentConfigFile(bad)).rejects.toThrow(/bad\.yaml is not valid YAML/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
