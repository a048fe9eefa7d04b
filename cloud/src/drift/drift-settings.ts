import { Type, type Static } from '@sinclair/typebox';

const Levels = (warning: number, alert: number, description: string) =>
  Type.Object(
    {
      warning: Type.Number({ minimum: 0, default: warning }),
      alert: Type.Number({ minimum: 0, default: alert }),
    },
    { default: {}, additionalProperties: false, description },
  );

/**
 * Settings of the drift job, with the defaults docs/drift.md justifies. A
 * level is reached when the statistic is at or above it (and, for PSI, KS and
 * the binomial test, significant at `alpha`).
 */
export const DriftSettingsSchema = Type.Object(
  {
    enabled: Type.Boolean({ default: true }),
    schedule: Type.String({
      default: '*/5 * * * *',
      description: 'node-cron schedule of the drift job (one run at a time)',
    }),
    lookbackSec: Type.Number({
      minimum: 1,
      default: 900,
      description: 'product drift aggregates the windows that ended within this many seconds',
    }),
    minFrames: Type.Integer({
      minimum: 1,
      default: 1000,
      description: 'frames a feature needs over the lookback before it is judged',
    }),
    minReferenceFrames: Type.Integer({
      minimum: 1,
      default: 10,
      description: 'reference images a feature needs before it is judged',
    }),
    alpha: Type.Number({
      exclusiveMinimum: 0,
      maximum: 0.5,
      default: 0.001,
      description: 'significance PSI, KS and the binomial test need besides their level',
    }),
    psi: Levels(0.1, 0.25, 'Population Stability Index'),
    ks: Levels(0.1, 0.2, 'Kolmogorov-Smirnov D'),
    defectRateShift: Levels(0.05, 0.1, 'absolute shift of the defect rate from the expected'),
    camera: Type.Object(
      {
        minFrames: Type.Integer({
          minimum: 1,
          default: 200,
          description:
            'camera health judges the newest windows that together hold this many frames',
        }),
        frozenShare: Levels(0.5, 0.9, 'share of frames identical to the one before'),
        darkShare: Levels(0.5, 0.9, 'share of dark frames'),
        clippedShare: Levels(0.1, 0.25, 'mean share of clipped (over- or under-exposed) pixels'),
        sharpnessDrop: Levels(0.5, 0.75, 'blur: 1 - median sharpness / reference median'),
        movedGrey: Levels(8, 16, 'RMS grey difference of the mean image from the reference'),
        missingWindows: Type.Integer({
          minimum: 1,
          default: 3,
          description: 'newest windows in a row with no frame at all before a camera is missing',
        }),
      },
      { default: {}, additionalProperties: false },
    ),
    clearRatio: Type.Number({
      exclusiveMinimum: 0,
      maximum: 1,
      default: 0.8,
      description: 'an alert resolves only below this share of its warning level',
    }),
    clearRuns: Type.Integer({
      minimum: 1,
      default: 2,
      description: 'runs in a row below the clear level before an alert resolves',
    }),
    webhookUrl: Type.Optional(
      Type.String({ pattern: '^https?://', description: 'POSTed on alert open and resolve' }),
    ),
    webhookRetries: Type.Integer({ minimum: 0, maximum: 10, default: 3 }),
    webhookTimeoutMs: Type.Integer({ minimum: 100, default: 5000 }),
  },
  { default: {}, additionalProperties: false },
);
/** Validated drift settings. */
export type DriftSettings = Static<typeof DriftSettingsSchema>;
/** Drift settings as given: any field may be left out (its default applies). */
export type DriftSettingsInput = {
  [K in keyof DriftSettings]?: DriftSettings[K] extends Record<string, unknown>
    ? { [L in keyof DriftSettings[K]]?: Partial<DriftSettings[K][L]> }
    : DriftSettings[K];
};
/** Warning and alert levels of one statistic. */
export type DriftLevels = DriftSettings['psi'];

/** The warning level of the statistic a finding carries (the alert store's hysteresis). */
export function warningLevelOf(
  settings: DriftSettings,
  finding: { kind: string; feature: string; statistic: string },
): number {
  const c = settings.camera;
  if (finding.kind === 'camera') {
    switch (finding.feature) {
      case 'frozen':
        return c.frozenShare.warning;
      case 'dark':
        return c.darkShare.warning;
      case 'clipped':
        return c.clippedShare.warning;
      case 'blur':
        return c.sharpnessDrop.warning;
      case 'moved':
        return c.movedGrey.warning;
      default:
        return c.missingWindows;
    }
  }
  if (finding.statistic === 'psi') return settings.psi.warning;
  if (finding.statistic === 'ks') return settings.ks.warning;
  return settings.defectRateShift.warning;
}
