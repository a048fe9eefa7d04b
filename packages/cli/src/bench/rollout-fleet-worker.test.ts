import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '@linesight/agent';
import {
  SIMULATED_AGENT_CONFIG,
  fleetWorkerArgs,
  parseFleetWorkerArgs,
} from './rollout-fleet-worker.ts';

describe('fleet worker arguments', () => {
  it('carry the settings there and back', () => {
    const settings = {
      cloudUrl: 'http://127.0.0.1:1234',
      devices: 1000,
      dataDir: '/tmp/f',
      idPrefix: 'bench2',
    };
    expect(parseFleetWorkerArgs(fleetWorkerArgs(settings))).toEqual(settings);
  });

  it('refuse missing or malformed settings', () => {
    expect(() => parseFleetWorkerArgs(['--cloud', 'http://x'])).toThrow(/usage/);
    expect(() =>
      parseFleetWorkerArgs(['--cloud', 'http://x', '--devices', '0', '--data-dir', '/d']),
    ).toThrow(/positive integer/);
    expect(() => parseFleetWorkerArgs(['--token', 'secret'])).toThrow();
  });
});

describe('simulated agent settings', () => {
  const base = {
    deviceId: 'bench0-001',
    cloudUrl: 'http://127.0.0.1:1',
    mqttUrl: 'mqtt://127.0.0.1:1',
    username: 'bench0-001',
    password: 'secret',
    trustedKeys: [{ keyId: 'k1', publicKeyPem: 'unused' }],
    dataDir: '/tmp/unused',
  };

  it('are agent settings: the simulated devices look for work less often than a device does', () => {
    const device = loadAgentConfig(base);
    const simulated = loadAgentConfig({ ...base, ...SIMULATED_AGENT_CONFIG });
    expect(device.forwardTickMs).toBe(100);
    expect(device.storeQuotaCheckMs).toBe(1000);
    expect(simulated.forwardTickMs).toBe(2000);
    expect(simulated.storeQuotaCheckMs).toBe(30_000);
  });

  it('refuse a forwarder that would spin or never look', () => {
    expect(() => loadAgentConfig({ ...base, forwardTickMs: 1 })).toThrow(/forwardTickMs/);
    expect(() => loadAgentConfig({ ...base, forwardTickMs: 3_600_000 })).toThrow(/forwardTickMs/);
  });
});
