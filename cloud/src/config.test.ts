import { describe, expect, it } from 'vitest';
import { isLinesightError } from '@linesight/protocol';
import { advertisedUrls } from './cloud.ts';
import { loadCloudConfig } from './config.ts';

const BOUND = { http: 'http://127.0.0.1:8080', mqtt: 'mqtt://127.0.0.1:1883' };

describe('loadCloudConfig', () => {
  it('takes publicUrl, the old name, as advertisedUrl: one address for devices and signed blob URLs', () => {
    const config = loadCloudConfig({ publicUrl: 'https://line.example/' });
    expect(config.advertisedUrl).toBe('https://line.example/');
    expect(config.publicUrl).toBeUndefined();
    expect(advertisedUrls(BOUND, config)).toEqual({
      http: 'https://line.example',
      mqtt: BOUND.mqtt,
    });
    // The same address under both names is fine.
    expect(
      loadCloudConfig({ publicUrl: 'https://a.example', advertisedUrl: 'https://a.example/' })
        .advertisedUrl,
    ).toBe('https://a.example/');
  });

  it('refuses publicUrl and advertisedUrl that differ, naming both', () => {
    let caught: unknown;
    try {
      loadCloudConfig({ publicUrl: 'https://a.example', advertisedUrl: 'https://b.example' });
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught) && caught.code).toBe('ERR_CLOUD_CONFIG');
    expect(String((caught as Error).message)).toMatch(/publicUrl: the old name of advertisedUrl/);
    expect(String((caught as Error).message)).toContain('https://b.example');
  });

  it('bounds artifact downloads at 256 by default and refuses a limit below 1 or not whole', () => {
    expect(loadCloudConfig({}).artifactDownloadConcurrency).toBe(256);
    expect(loadCloudConfig({ artifactDownloadConcurrency: 1 }).artifactDownloadConcurrency).toBe(1);
    for (const bad of [0, -3, 2.5]) {
      let caught: unknown;
      try {
        loadCloudConfig({ artifactDownloadConcurrency: bad });
      } catch (err) {
        caught = err;
      }
      expect(isLinesightError(caught, 'ERR_CLOUD_CONFIG'), String(bad)).toBe(true);
      expect(String((caught as Error).message)).toMatch(/artifactDownloadConcurrency/);
    }
  });

  it('paces desired-state publishes at 500 a second by default and refuses a rate below 1', () => {
    expect(loadCloudConfig({}).desiredPublishRatePerSec).toBe(500);
    expect(loadCloudConfig({ desiredPublishRatePerSec: 5000 }).desiredPublishRatePerSec).toBe(5000);
    let caught: unknown;
    try {
      loadCloudConfig({ desiredPublishRatePerSec: 0 });
    } catch (err) {
      caught = err;
    }
    expect(isLinesightError(caught, 'ERR_CLOUD_CONFIG')).toBe(true);
    expect(String((caught as Error).message)).toMatch(/desiredPublishRatePerSec/);
  });

  it('uses the bound addresses when nothing is advertised', () => {
    expect(advertisedUrls(BOUND, loadCloudConfig({}))).toEqual(BOUND);
  });

  it('defaults the orphan sweep and refuses a grace under four upload-URL lifetimes or a bad schedule', () => {
    const config = loadCloudConfig({});
    expect(config.edgeOrphanGraceHours).toBe(24);
    expect(config.edgeOrphanSweepCron).toBe('43 2 * * *');
    expect(
      loadCloudConfig({ edgeOrphanGraceHours: 1, uploadUrlTtlSec: 900 }).edgeOrphanGraceHours,
    ).toBe(1);
    const problems = (input: Parameters<typeof loadCloudConfig>[0]): string => {
      try {
        loadCloudConfig(input);
      } catch (err) {
        expect(isLinesightError(err, 'ERR_CLOUD_CONFIG')).toBe(true);
        return (err as Error).message;
      }
      return '';
    };
    // Unset, the grace grows with a long URL lifetime instead of refusing it.
    expect(loadCloudConfig({ uploadUrlTtlSec: 24 * 3600 }).edgeOrphanGraceHours).toBe(96);
    expect(problems({ edgeOrphanGraceHours: 0.5 })).toMatch(/edgeOrphanGraceHours/);
    expect(problems({ edgeOrphanGraceHours: 2, uploadUrlTtlSec: 3600 })).toMatch(
      /edgeOrphanGraceHours: 2 h is shorter than four upload-URL lifetimes/,
    );
    const both = problems({ edgeOrphanSweepCron: 'daily', edgeRetentionCron: '61 * * * *' });
    expect(both).toMatch(/edgeOrphanSweepCron: "daily" is not a node-cron schedule/);
    expect(both).toMatch(/edgeRetentionCron: "61 \* \* \* \*" is not a node-cron schedule/);
  });

  it('keeps dynsec as the default and checks what the files accounts need, every problem at once', () => {
    expect(loadCloudConfig({}).mqttAccounts).toBe('dynsec');
    const refused = (input: Parameters<typeof loadCloudConfig>[0]): string => {
      try {
        loadCloudConfig(input);
      } catch (err) {
        expect(isLinesightError(err, 'ERR_CLOUD_CONFIG')).toBe(true);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    const message = refused({ mqttAccounts: 'files', mqttUsername: 'cloud:1' });
    expect(message).toMatch(/mqttAccounts: files needs mqttUrl/);
    expect(message).toMatch(/mosquittoConfigDir: required with mqttAccounts files/);
    expect(message).toMatch(/mqttUsername: "cloud:1" cannot be in a Mosquitto password file/);
    expect(refused({ mosquittoPidFile: '/run/m.pid' })).toMatch(/only with mqttAccounts files/);
    expect(refused({ mqttAccounts: 'plugin' as 'files' })).toMatch(/mqttAccounts/);
    const files = loadCloudConfig({
      mqttUrl: 'mqtt://127.0.0.1:1884',
      mqttPassword: 'pw',
      mqttAccounts: 'files',
      mosquittoConfigDir: '/var/lib/linesight-mosquitto',
    });
    expect(files.mqttAccounts).toBe('files');
    expect(files.mosquittoPidFile).toBeUndefined();
  });
});
