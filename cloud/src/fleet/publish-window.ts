/**
 * Runs `publish` for every item with at most `maxInFlight` unfinished at once, in order,
 * each after `beforeEach` (a pacer's turn) when given.
 * A full window waits for one to finish (a PUBACK: I/O), so sockets, timers and HTTP
 * requests keep being served while thousands of publishes go out. Rejects with the first
 * failure after the ones already started have settled; starts nothing after a failure.
 */
export async function publishWindowed<T>(
  items: Iterable<T>,
  maxInFlight: number,
  publish: (item: T) => Promise<void>,
  beforeEach?: () => Promise<void>,
): Promise<void> {
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1)
    throw new RangeError(`maxInFlight must be a positive integer, not ${maxInFlight}`);
  const inFlight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  for (const item of items) {
    if (failure !== undefined) break;
    if (beforeEach !== undefined) await beforeEach();
    if (failure !== undefined) break;
    const p: Promise<void> = publish(item).then(
      () => {
        inFlight.delete(p);
      },
      (err: unknown) => {
        inFlight.delete(p);
        failure ??= { err };
      },
    );
    inFlight.add(p);
    if (inFlight.size >= maxInFlight) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure.err;
}
