/** One dependency the cloud needs to serve: throws (or rejects) when it is not ready. */
export interface ReadinessCheck {
  name: string;
  check: () => Promise<void> | void;
}

/** What /readyz answers. */
export interface ReadinessReport {
  ready: boolean;
  /** Per check: "ok" or why it is not ready. */
  checks: Record<string, string>;
}

/**
 * Runs every check at once, each with a deadline, so a hung dependency makes the
 * cloud "not ready" instead of hanging the probe.
 */
export async function checkReadiness(
  checks: ReadinessCheck[],
  timeoutMs = 2000,
): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async ({ name, check }): Promise<[string, string]> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          Promise.resolve().then(check),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`no answer within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
        return [name, 'ok'];
      } catch (err) {
        return [name, err instanceof Error ? err.message : String(err)];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return {
    ready: results.every(([, state]) => state === 'ok'),
    checks: Object.fromEntries(results),
  };
}
