import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { EdgeStore, type SampleInput, type VerdictInput, type WindowInput } from './edge-store.ts';

const logger = pino({ level: 'silent' });
const dirs: string[] = [];
const stores: EdgeStore[] = [];

async function open(quotaBytes = 64 * 1024 * 1024, dir?: string): Promise<EdgeStore> {
  const where = dir ?? (await mkdtemp(join(tmpdir(), 'edge-store-')));
  if (dir === undefined) dirs.push(where);
  const store = await EdgeStore.open({ dir: where, quotaBytes, logger, quotaCheckMs: 60_000 });
  stores.push(store);
  return store;
}

function verdict(
  frameSeq: number,
  at = new Date(Date.UTC(2026, 0, 1, 0, 0, frameSeq % 120)),
): VerdictInput {
  return {
    frameSeq,
    at: at.toISOString(),
    modelName: 'tile',
    modelVersion: '1.0.0',
    score: frameSeq % 10 === 0 ? 0.9 : 0.1,
    verdict: frameSeq % 10 === 0 ? 'defect' : 'good',
    latencyMs: 8,
  };
}

function sample(cls: SampleInput['class'], frameSeq: number): SampleInput {
  return {
    frameSeq,
    at: new Date().toISOString(),
    class: cls,
    modelName: 'tile',
    modelVersion: '1.0.0',
    score: 0.5,
    verdict: cls === 'defect' ? 'defect' : 'good',
  };
}

/**
 * Makes the store's first write at open (its boot number) fail once, as on a disk full to the
 * last block; the write after it succeeds, `atRetry` called just before it. Restore the spy it
 * returns.
 */
function failFirstStartWrite(atRetry: () => void = () => undefined) {
  const exec = Database.prototype.exec;
  let calls = 0;
  return vi.spyOn(Database.prototype, 'exec').mockImplementation(function (
    this: Database.Database,
    sql: string,
  ) {
    if (sql.includes('INSERT INTO backlog_counts')) {
      calls++;
      if (calls === 1) throw new Database.SqliteError('database or disk is full', 'SQLITE_FULL');
      if (calls === 2) atRetry();
    }
    return exec.call(this, sql);
  });
}

afterEach(async () => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('EdgeStore', () => {
  it('keeps verdict rows with stable ids until they are acknowledged, across restarts', async () => {
    const store = await open();
    const dir = join(store.imagesDir, '..');
    expect(store.boot).toBe(0);
    for (let i = 0; i < 600; i++) store.recordVerdict(verdict(i));
    store.flush();
    const first = store.take('verdicts', 250);
    expect(first?.records).toHaveLength(250);
    expect(first?.records[0]).toMatchObject({ boot: 0, seq: 0, frameSeq: 0, verdict: 'defect' });
    const second = store.take('verdicts', 250);
    expect(second?.records[0]?.seq).toBe(250);
    store.ack('verdicts', first?.firstId ?? 0, first?.lastId ?? 0);
    // The link dropped before the second batch was acknowledged: it is handed out again.
    store.rewind();
    expect(store.take('verdicts', 1000)?.records.map((r) => r.seq)).toEqual(
      Array.from({ length: 350 }, (_, i) => 250 + i),
    );
    store.close();
    const again = await open(undefined, dir);
    expect(again.boot).toBe(1);
    expect(again.backlog().verdicts).toBe(350);
    again.recordVerdict(verdict(0));
    again.flush();
    const all = [];
    for (let b = again.take('verdicts', 200); b; b = again.take('verdicts', 200))
      all.push(...b.records);
    expect(all).toHaveLength(351);
    expect(all.at(-1)).toMatchObject({ boot: 1, seq: 0 });
    expect(new Set(all.map((r) => `${r.boot}/${r.seq}`)).size).toBe(351);
  });

  it("keeps the newest frame a process recorded itself with its rows, so a line guard's hand-over of it can be skipped", async () => {
    const first = await open();
    const dir = join(first.imagesDir, '..');
    expect(first.previousLineFrame).toBeUndefined();
    for (let i = 0; i < 5; i++) first.recordVerdict(verdict(i));
    // A guard's unknown for an older frame, handed over: not a frame this process took.
    first.recordVerdict({ ...verdict(0), verdict: 'unknown' }, { handedOver: true });
    first.flush();
    // Buffered, never flushed: the process dies here (kill -9), these rows are lost with it.
    first.recordVerdict(verdict(5));
    first.recordVerdict(verdict(6));
    // Every flushed row forwarded and acknowledged: the mark does not depend on them.
    const batch = first.take('verdicts', 100)!;
    first.ack('verdicts', batch.firstId, batch.lastId);
    // Left: the two buffered rows only.
    expect(first.backlog().verdicts).toBe(2);

    const next = await open(undefined, dir);
    expect(next.previousLineFrame).toEqual({
      pid: process.pid,
      boot: 0,
      frameSeq: 4,
      at: verdict(4).at,
    });
    // Frames 0-4 were recorded by that process: a hand-over of them is a duplicate.
    for (let i = 0; i < 5; i++)
      expect(next.recordedBefore(process.pid, i, verdict(i).at), `frame ${i}`).toBe(true);
    // Its rows of 5 and 6 died with it: the guard's unknowns for them must be written.
    expect(next.recordedBefore(process.pid, 5, verdict(5).at)).toBe(false);
    expect(next.recordedBefore(process.pid, 6, verdict(6).at)).toBe(false);
    // Another process's frames: not known to be recorded.
    expect(next.recordedBefore(process.pid + 1, 0, verdict(0).at)).toBe(false);
    // A handed-over row does not move the mark; a row of a frame the process took does.
    next.recordVerdict({ ...verdict(5), verdict: 'unknown' }, { handedOver: true });
    next.flush();
    const third = await open(undefined, dir);
    expect(third.previousLineFrame?.frameSeq).toBe(4);
    third.recordVerdict(verdict(7));
    third.flush();
    const fourth = await open(undefined, dir);
    expect(fourth.previousLineFrame).toEqual({
      pid: process.pid,
      boot: 2,
      frameSeq: 7,
      at: verdict(7).at,
    });
    expect(fourth.recordedBefore(process.pid, 5, verdict(5).at)).toBe(true);
  });

  it('hands out rows written after the table was emptied by acknowledgements', async () => {
    const store = await open();
    for (let i = 0; i < 50; i++) store.recordVerdict(verdict(i));
    store.flush();
    store.addEvent({
      at: new Date().toISOString(),
      level: 'info',
      type: 'agent.started',
      message: 'a',
    });
    const sent = store.take('verdicts', 100);
    const events = store.take('events', 10);
    store.ack('verdicts', sent?.firstId ?? 0, sent?.lastId ?? 0);
    store.ack('events', events?.firstId ?? 0, events?.lastId ?? 0);
    expect(store.backlog()).toMatchObject({ verdicts: 0, events: 0 });
    // New rows never reuse the ids of acknowledged ones: they are the next batch, and an
    // acknowledgement arriving late for the old range deletes nothing new.
    for (let i = 50; i < 60; i++) store.recordVerdict(verdict(i));
    store.flush();
    store.addEvent({
      at: new Date().toISOString(),
      level: 'info',
      type: 'agent.started',
      message: 'b',
    });
    store.ack('verdicts', sent?.firstId ?? 0, sent?.lastId ?? 0);
    expect(store.take('verdicts', 100)?.records.map((r) => r.frameSeq)).toEqual(
      Array.from({ length: 10 }, (_, i) => 50 + i),
    );
    expect(store.take('events', 10)?.records.map((e) => e.message)).toEqual(['b']);
  });

  it('after finding nothing to hand out, finds what any later write or a rewind brings', async () => {
    // take() and pendingUploads() skip their query while no row changed since they found
    // nothing; every path that makes rows available must still be seen.
    const store = await open();
    const image = Buffer.alloc(512, 7);
    expect(store.take('verdicts', 10)).toBeUndefined();
    expect(store.take('windows', 10)).toBeUndefined();
    expect(store.take('events', 10)).toBeUndefined();
    expect(store.take('samples', 10)).toBeUndefined();
    expect(store.pendingUploads(10)).toEqual([]);
    store.recordVerdict(verdict(1));
    expect(store.take('verdicts', 10)).toBeUndefined(); // buffered, not yet written
    store.flush();
    const sent = store.take('verdicts', 10);
    expect(sent?.records.map((r) => r.frameSeq)).toEqual([1]);
    expect(store.take('verdicts', 10)).toBeUndefined();
    // The link dropped before the acknowledgement: the same row goes again.
    store.rewind();
    expect(store.take('verdicts', 10)?.records.map((r) => r.frameSeq)).toEqual([1]);
    store.addEvent({
      at: new Date().toISOString(),
      level: 'info',
      type: 'agent.started',
      message: 'e',
    });
    expect(store.take('events', 10)?.records.map((e) => e.message)).toEqual(['e']);
    expect(await store.addSample(sample('defect', 2), image)).toBe(true);
    const pending = store.pendingUploads(10);
    expect(pending.map((p) => p.frameSeq)).toEqual([2]);
    expect(store.take('samples', 10)).toBeUndefined(); // stored, not yet uploaded
    store.markUploaded([{ id: pending[0]!.id, objectKey: 'samples/2.jpg' }]);
    expect(store.pendingUploads(10)).toEqual([]);
    const indexed = store.take('samples', 10);
    expect(indexed?.records.map((r) => r.objectKey)).toEqual(['samples/2.jpg']);
    expect(store.take('samples', 10)).toBeUndefined();
    store.rewind();
    expect(store.take('samples', 10)?.records.map((r) => r.objectKey)).toEqual(['samples/2.jpg']);
  });

  it('upgrades a store whose tables reuse row ids, keeping every row', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
    dirs.push(dir);
    const old = new Database(join(dir, 'store.sqlite'));
    old.exec(`
      CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE verdicts (
        id INTEGER PRIMARY KEY, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
        frame_seq INTEGER NOT NULL, at TEXT NOT NULL, model_name TEXT, model_version TEXT,
        score REAL, verdict TEXT NOT NULL, reason TEXT, latency_ms REAL NOT NULL);
      CREATE TABLE windows (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
      CREATE TABLE samples (
        id INTEGER PRIMARY KEY, boot INTEGER NOT NULL, seq INTEGER NOT NULL, class TEXT NOT NULL,
        state TEXT NOT NULL, meta TEXT NOT NULL, image_path TEXT NOT NULL, image_bytes INTEGER NOT NULL,
        image_sha256 TEXT NOT NULL, map_path TEXT, map_bytes INTEGER NOT NULL DEFAULT 0,
        map_sha256 TEXT, object_key TEXT, map_key TEXT);
      CREATE INDEX samples_state ON samples(state, id);
      INSERT INTO meta VALUES ('boot', '3');
      INSERT INTO verdicts VALUES (7, 3, 0, 0, '2026-01-01T00:00:00.000Z', 'tile', '1.0.0', 0.1, 'good', NULL, 8);
    `);
    old.close();
    const store = await open(undefined, dir);
    expect(store.boot).toBe(4);
    store.recordVerdict(verdict(1));
    store.flush();
    const batch = store.take('verdicts', 10);
    expect(batch?.records.map((r) => [r.boot, r.seq])).toEqual([
      [3, 0],
      [4, 0],
    ]);
    expect(batch?.lastId).toBeGreaterThan(7);
    store.ack('verdicts', batch?.firstId ?? 0, batch?.lastId ?? 0);
    store.recordVerdict(verdict(2));
    store.flush();
    expect(store.take('verdicts', 10)?.firstId).toBeGreaterThan(batch?.lastId ?? 0);
  });

  it('stores windows and events with their own ids', async () => {
    const store = await open();
    store.addEvent({
      at: new Date().toISOString(),
      level: 'info',
      type: 'agent.started',
      message: 'hi',
    });
    store.addEvent({
      at: new Date().toISOString(),
      level: 'warn',
      type: 'camera.error',
      message: 'x',
    });
    const events = store.take('events', 10);
    expect(events?.records.map((e) => [e.boot, e.seq, e.type])).toEqual([
      [0, 0, 'agent.started'],
      [0, 1, 'camera.error'],
    ]);
  });

  it('evicts random samples before uncertain ones before defects, newest kept, and counts it', async () => {
    const image = Buffer.alloc(100_000, 7);
    const probe = await open();
    const base = probe.usedBytes();
    // Room for the database and about eight images (the fresh store's WAL, in the base, is
    // checkpointed away on the first eviction, which leaves a little more).
    const store = await open(base + 8 * 100_000 + 64 * 1024);
    // Lowest priority first: the quota bites while the defects arrive.
    for (let i = 0; i < 6; i++) await store.addSample(sample('random', 200 + i), image);
    for (let i = 0; i < 6; i++) await store.addSample(sample('uncertain', 100 + i), image);
    for (let i = 0; i < 6; i++)
      expect(await store.addSample(sample('defect', i), image)).toBe(true);
    const left = store.pendingUploads(100);
    const byClass = (c: string) => left.filter((s) => s.class === c).map((s) => s.frameSeq);
    expect(byClass('defect')).toEqual([0, 1, 2, 3, 4, 5]);
    expect(byClass('random')).toEqual([]);
    // The uncertain samples left are the newest ones.
    const uncertain = byClass('uncertain');
    expect(uncertain.length).toBeLessThan(6);
    expect(uncertain).toEqual(
      Array.from({ length: uncertain.length }, (_, i) => 106 - uncertain.length + i),
    );
    const { evictions, diskFull } = store.state();
    expect(evictions.random).toBe(6);
    expect(evictions.uncertain).toBeGreaterThan(0);
    expect(evictions.defect).toBe(0);
    expect(diskFull).toBe(false);
    expect(store.usedBytes()).toBeLessThanOrEqual(base + 8 * 100_000 + 64 * 1024);
    const files = await readdir(store.imagesDir);
    expect(files).toHaveLength(left.length);
  });

  it('removes an uploaded sample’s files and never evicts its index, which may be in the cloud already', async () => {
    const image = Buffer.alloc(100_000, 7);
    const probe = await open();
    const store = await open(probe.usedBytes() + 4 * 100_000 + 64 * 1024);
    for (let i = 0; i < 3; i++) await store.addSample(sample('random', i), image, Buffer.alloc(10));
    const bytesBefore = store.state().imageBytes;
    const [first] = store.pendingUploads(1);
    store.markUploaded([{ id: first!.id, objectKey: 'k/0', mapKey: 'k/0-map' }]);
    expect(store.state().imageBytes).toBe(bytesBefore - 100_010);
    expect((await readdir(store.imagesDir)).sort()).toEqual([
      '0-1-map.png',
      '0-1.jpg',
      '0-2-map.png',
      '0-2.jpg',
    ]);
    // Its index goes out, the link drops before the acknowledgement (the cloud may have it).
    expect(store.take('samples', 10)?.records.map((r) => r.frameSeq)).toEqual([0]);
    store.rewind();
    // The quota bites: only samples with files are evicted, and each is counted once.
    for (let i = 3; i < 12; i++) await store.addSample(sample('random', i), image);
    const { evictions } = store.state();
    expect(evictions.random).toBeGreaterThan(0);
    const left = store.pendingUploads(100).map((s) => s.frameSeq);
    expect(evictions.random + left.length).toBe(11);
    expect(store.take('samples', 10)?.records.map((r) => r.frameSeq)).toEqual([0]);
    // A restart does not take the index for a sample whose files are gone: only a stored
    // sample whose file is lost is marked missing, and its bytes are no longer counted.
    const stored = store.pendingUploads(100);
    store.close();
    await rm(stored[0]!.imagePath);
    const again = await open(undefined, join(store.imagesDir, '..'));
    expect(again.recovered.missingMarked).toBe(1);
    expect(again.state().imageBytes).toBe((stored.length - 1) * 100_000);
    expect(again.take('samples', 10)?.records.map((r) => r.frameSeq)).toEqual([0]);
  });

  it('compacts unsent verdict rows into per-minute counts before evicting them', async () => {
    const probe = await open();
    const base = probe.usedBytes();
    const store = await open(base + 200 * 1024);
    for (let i = 0; i < 20_000; i++) store.recordVerdict(verdict(i));
    store.flush();
    store.enforceQuota();
    const { evictions } = store.state();
    expect(evictions.verdictRowsCompacted).toBeGreaterThan(0);
    let rows = 0;
    for (let b = store.take('verdicts', 5000); b; b = store.take('verdicts', 5000))
      rows += b.records.length;
    let counted = 0;
    let defects = 0;
    for (let b = store.take('minutes', 5000); b; b = store.take('minutes', 5000))
      for (const m of b.records) {
        counted += m.good + m.defect + m.unknown;
        defects += m.defect;
      }
    // Every frame is either a row or in a per-minute count: nothing is lost.
    expect(rows + counted).toBe(20_000);
    expect(counted).toBe(evictions.verdictRowsCompacted);
    expect(defects).toBeGreaterThan(0);
  });

  it('reports a quota below what it must keep as a full disk and keeps accepting frames', async () => {
    const store = await open(1024);
    for (let i = 0; i < 1000; i++) store.recordVerdict(verdict(i));
    expect(() => store.flush()).not.toThrow();
    store.enforceQuota();
    expect(store.state().diskFull).toBe(true);
    store.recordVerdict(verdict(1000));
    store.flush();
  });

  it('evicts samples, never verdict rows, when the filesystem runs short of its reserve, and reports it', async () => {
    const MiB = 1024 * 1024;
    const dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
    dirs.push(dir);
    // A simulated 16 MiB disk that something else fills to `other` bytes; the store's own use counts too.
    let other = 6 * MiB;
    const disk: { store?: EdgeStore } = {};
    const diskSpace = () => ({
      totalBytes: 16 * MiB,
      freeBytes: Math.max(0, 16 * MiB - other - (disk.store?.usedBytes() ?? 0)),
    });
    const store = await EdgeStore.open({
      dir,
      quotaBytes: 1024 * MiB,
      logger,
      quotaCheckMs: 60_000,
      diskReserveBytes: MiB,
      diskSpace,
      diskFullHoldMs: 0,
    });
    disk.store = store;
    stores.push(store);
    const image = Buffer.alloc(200_000, 3);
    for (let i = 0; i < 3; i++) await store.addSample(sample('defect', i), image);
    let frame = 0;
    for (let i = 0; i < 60; i++) {
      for (let j = 0; j < 100; j++) store.recordVerdict(verdict(frame++));
      store.flush();
      await store.addSample(sample('random', 1000 + i), image);
    }
    store.enforceQuota();
    const full = store.state();
    expect(full.evictions.random).toBeGreaterThan(0);
    expect(full.evictions.defect).toBe(0);
    expect(full.evictions.verdictRowsCompacted).toBe(0);
    expect(full.diskFull).toBe(true);
    expect(diskSpace().freeBytes).toBeGreaterThanOrEqual(MiB - 200_000);
    // Every verdict row is kept; the newest random samples are the ones left.
    expect(full.backlog.verdicts).toBe(frame);
    const random = store
      .pendingUploads(100)
      .filter((s) => s.class === 'random')
      .map((s) => s.frameSeq);
    expect(random.at(-1)).toBe(1059);
    expect(random).toEqual(
      Array.from({ length: random.length }, (_, i) => 1060 - random.length + i),
    );
    // A random sample never displaces a defect: with only defects left, it is refused and counted.
    const pending = store.pendingUploads(100).filter((s) => s.class === 'random');
    store.markUploaded(pending.map((s) => ({ id: s.id, objectKey: `k-${s.id}` })));
    for (let b = store.take('samples', 100); b; b = store.take('samples', 100))
      store.ack('samples', b.firstId, b.lastId);
    other = 16 * MiB - store.usedBytes() - MiB;
    const lost = store.state().lostWrites;
    expect(await store.addSample(sample('random', 2000), image)).toBe(false);
    expect(store.state().lostWrites).toBe(lost + 1);
    expect(store.state().evictions.defect).toBe(0);
    // Space returns: the state clears at the next check.
    other = 0;
    store.enforceQuota();
    expect(store.state().diskFull).toBe(false);
    expect(await store.addSample(sample('random', 2001), image)).toBe(true);
  });

  it('while frames arrive, runs its timed flush right after the next frame, not at the tick', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'edge-store-'));
    dirs.push(dir);
    // The clock is fake before the store opens, so its flush interval runs on it.
    vi.useFakeTimers({
      toFake: ['setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'performance'],
    });
    try {
      const timed = await EdgeStore.open({
        dir,
        quotaBytes: 64 * 1024 * 1024,
        logger,
        flushIntervalMs: 20,
        quotaCheckMs: 60_000,
      });
      stores.push(timed);
      const timedWritten = () => {
        const batch = timed.take('verdicts', 1000);
        if (batch !== undefined) timed.rewind();
        return batch?.records.length ?? 0;
      };
      timed.recordVerdict(verdict(0));
      // The tick comes while frames arrive: nothing is written at it...
      vi.advanceTimersByTime(20);
      expect(timedWritten()).toBe(0);
      // ...but right after the next frame, before any other timer.
      timed.recordVerdict(verdict(1));
      vi.advanceTimersByTime(0);
      expect(timedWritten()).toBe(2);
      // With no frame for two intervals, the tick writes at once.
      timed.recordVerdict(verdict(2));
      vi.advanceTimersByTime(100);
      expect(timedWritten()).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps its backlog counts equal to the tables through every write path and restart', async () => {
    const image = Buffer.alloc(50_000, 3);
    const probe = await open();
    const base = probe.usedBytes();
    // Small enough that samples are evicted and verdict rows compacted on the way.
    const store = await open(base + 8 * 50_000 + 256 * 1024);
    const dir = join(store.imagesDir, '..');
    const counted = () => {
      const db = new Database(join(dir, 'store.sqlite'), { readonly: true });
      const n = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
      const counts = {
        verdicts: n('SELECT COUNT(*) AS n FROM verdicts'),
        windows: n('SELECT COUNT(*) AS n FROM windows'),
        events: n('SELECT COUNT(*) AS n FROM events'),
        samples: n("SELECT COUNT(*) AS n FROM samples WHERE state != 'missing'"),
      };
      db.close();
      return counts;
    };
    const checks: number[] = [];
    const same = () => {
      expect(store.backlog()).toEqual(counted());
      checks.push(store.backlog().verdicts);
    };
    for (let i = 0; i < 3000; i++) store.recordVerdict(verdict(i));
    store.flush();
    for (let i = 0; i < 5; i++) {
      store.addWindow({ n: i } as unknown as WindowInput);
      store.addEvent({ at: new Date().toISOString(), level: 'info', type: 'x', message: `${i}` });
    }
    for (let i = 0; i < 12; i++)
      await store.addSample(sample(i % 2 === 0 ? 'random' : 'defect', i), image);
    same();
    const taken = store.take('verdicts', 1000);
    store.ack('verdicts', taken?.firstId ?? 0, taken?.lastId ?? 0);
    const windows = store.take('windows', 2);
    store.ack('windows', windows?.firstId ?? 0, windows?.lastId ?? 0);
    const uploads = store.pendingUploads(3);
    store.markUploaded(uploads.map((u) => ({ id: u.id, objectKey: `k/${u.id}` })));
    const indexed = store.take('samples', 2);
    store.ack('samples', indexed?.firstId ?? 0, indexed?.lastId ?? 0);
    same();
    for (let i = 3000; i < 30_000; i++) store.recordVerdict(verdict(i));
    store.flush();
    store.enforceQuota();
    expect(store.state().evictions.verdictRowsCompacted).toBeGreaterThan(0);
    same();
    const left = store.pendingUploads(100);
    store.close();
    await rm(join(dir, 'images', basename(left[0]?.imagePath ?? '')));
    const again = await open(undefined, dir);
    expect(again.recovered.missingMarked).toBe(1);
    expect(again.backlog()).toEqual(counted());
    expect(new Set(checks).size).toBe(checks.length);
  });

  it('removes orphan images and marks rows whose files are gone after a crash', async () => {
    const store = await open();
    const dir = join(store.imagesDir, '..');
    await store.addSample(sample('defect', 1), Buffer.from('jpeg-1'), Buffer.from('png-1'));
    await store.addSample(sample('defect', 2), Buffer.from('jpeg-2'));
    store.close();
    // A crash between the image write and its row, one mid-write, and a lost file.
    await writeFile(join(dir, 'images', '0-9.jpg'), 'orphan');
    await writeFile(join(dir, 'images', '0-10.jpg.tmp-abcdef'), 'half');
    await rm(join(dir, 'images', '0-1.jpg'));
    const again = await open(undefined, dir);
    expect(again.recovered).toEqual({ orphansRemoved: 2, missingMarked: 1 });
    expect((await readdir(again.imagesDir)).sort()).toEqual(['0-0-map.png', '0-0.jpg']);
    expect(again.pendingUploads(10).map((s) => s.frameSeq)).toEqual([1]);
  });

  it('removes the files of an uploaded sample left by a stop before their removal, and of no stored sample, at start', async () => {
    const store = await open();
    const dir = join(store.imagesDir, '..');
    await store.addSample(sample('defect', 0), Buffer.from('jpeg-0'), Buffer.from('png-0'));
    await store.addSample(sample('defect', 1), Buffer.from('jpeg-1'), Buffer.from('png-1'));
    const [uploaded] = store.pendingUploads(1);
    store.markUploaded([{ id: uploaded!.id, objectKey: 'k/0', mapKey: 'k/0-map' }]);
    store.close();
    // The stop came after the mark's commit, before its files went.
    await writeFile(join(dir, 'images', '0-0.jpg'), 'jpeg-0');
    await writeFile(join(dir, 'images', '0-0-map.png'), 'png-0');
    const again = await open(undefined, dir);
    expect(again.recovered).toEqual({ orphansRemoved: 2, missingMarked: 0 });
    expect((await readdir(again.imagesDir)).sort()).toEqual(['0-1-map.png', '0-1.jpg']);
    expect(again.state().imageBytes).toBe(11);
    expect(again.take('samples', 10)?.records.map((r) => r.frameSeq)).toEqual([0]);
  });

  it('starts on a disk full to the last block: files no stored sample owns go first, then images of the lowest-ranked samples', async () => {
    const store = await open();
    const dir = join(store.imagesDir, '..');
    const image = Buffer.alloc(1000, 1);
    await store.addSample(sample('defect', 0), image);
    await store.addSample(sample('random', 1), image);
    await store.addSample(sample('random', 2), image);
    await store.addSample(sample('uncertain', 3), image, Buffer.alloc(200, 2));
    const up = store.pendingUploads(10).find((s) => s.frameSeq === 3);
    store.markUploaded([{ id: up!.id, objectKey: 'k/3', mapKey: 'k/3-map' }]);
    store.close();
    // An uploaded sample's files left by a stop before their removal, and a write cut short:
    // 1,500 bytes no stored sample owns. The reserve asks one byte more, so one image goes too.
    await writeFile(join(dir, 'images', '0-3.jpg'), Buffer.alloc(1000, 1));
    await writeFile(join(dir, 'images', '0-3-map.png'), Buffer.alloc(200, 2));
    await writeFile(join(dir, 'images', '0-4.jpg.tmp-abcdef'), Buffer.alloc(300, 3));
    const full = failFirstStartWrite();
    try {
      const again = await EdgeStore.open({
        dir,
        quotaBytes: 64 * 1024 * 1024,
        logger,
        quotaCheckMs: 60_000,
        diskReserveBytes: 1501,
      });
      stores.push(again);
      expect(again.boot).toBe(1);
      // The oldest random sample, not the newer one, nor the older defect.
      expect((await readdir(again.imagesDir)).sort()).toEqual(['0-0.jpg', '0-2.jpg']);
      expect(again.pendingUploads(10).map((s) => s.frameSeq)).toEqual([0, 2]);
      expect(again.state().evictions).toMatchObject({ random: 1, uncertain: 0, defect: 0 });
      expect(again.state().imageBytes).toBe(2000);
      // The uploaded sample's index row is kept and sent.
      expect(again.take('samples', 10)?.records.map((r) => r.frameSeq)).toEqual([3]);
    } finally {
      full.mockRestore();
    }
  });

  it("starts on a full disk with the freed samples' images and maps already gone when it writes again", async () => {
    const store = await open();
    const dir = join(store.imagesDir, '..');
    await store.addSample(sample('random', 0), Buffer.alloc(1000, 1), Buffer.alloc(200, 2));
    await store.addSample(sample('defect', 1), Buffer.alloc(1000, 3), Buffer.alloc(200, 4));
    store.close();
    // The recovery after the start sweeps files no row owns: only the folder at the start's
    // second write shows what the start itself removed to make room for it.
    let atRetry: string[] | undefined;
    const full = failFirstStartWrite(() => {
      atRetry = readdirSync(join(dir, 'images')).sort();
    });
    try {
      const again = await EdgeStore.open({
        dir,
        quotaBytes: 64 * 1024 * 1024,
        logger,
        quotaCheckMs: 60_000,
        diskReserveBytes: 1,
      });
      stores.push(again);
      expect(again.boot).toBe(1);
      expect(atRetry).toEqual(['0-1-map.png', '0-1.jpg']);
      expect(again.recovered).toEqual({ orphansRemoved: 0, missingMarked: 0 });
      expect(again.state().evictions).toMatchObject({ random: 1, defect: 0 });
      expect(again.state().imageBytes).toBe(1200);
      expect(again.pendingUploads(10).map((s) => s.frameSeq)).toEqual([1]);
    } finally {
      full.mockRestore();
    }
  });

  it('starts on a full disk with only files no stored sample owns to free, and refuses to start with nothing to free', async () => {
    const store = await open();
    const dir = join(store.imagesDir, '..');
    store.close();
    let full = failFirstStartWrite();
    try {
      await expect(
        EdgeStore.open({ dir, quotaBytes: 64 * 1024 * 1024, logger, quotaCheckMs: 60_000 }),
      ).rejects.toMatchObject({ code: 'SQLITE_FULL' });
    } finally {
      full.mockRestore();
    }
    await writeFile(join(dir, 'images', '0-0.jpg.tmp-abcdef'), 'half');
    full = failFirstStartWrite();
    try {
      const again = await open(undefined, dir);
      expect(again.boot).toBe(1);
      expect(await readdir(again.imagesDir)).toEqual([]);
    } finally {
      full.mockRestore();
    }
  });

  it('acknowledging a samples batch deletes its index rows only: the files went at the upload mark, and a stored sample in its id range keeps its row and files', async () => {
    const image = Buffer.alloc(100_000, 7);
    const probe = await open();
    const store = await open(probe.usedBytes() + 5 * 100_000 + 64 * 1024);
    await store.addSample(sample('defect', 0), image, Buffer.alloc(10));
    await store.addSample(sample('defect', 1), image);
    await store.addSample(sample('defect', 2), image);
    await store.addSample(sample('random', 3), image);
    // One upload round in flight with all four; meanwhile defects make the quota evict the random one.
    const round = store.pendingUploads(10);
    expect(round.map((s) => s.frameSeq)).toEqual([0, 1, 2, 3]);
    for (let i = 4; store.state().evictions.random === 0 && i < 10; i++)
      await store.addSample(sample('defect', i), image);
    expect(store.state().evictions).toMatchObject({ random: 1, defect: 0 });
    const [s0, , s2, s3] = round;
    // The round stored 0, 2 and the evicted 3: the evicted one is not marked.
    store.markUploaded([s0!, s2!, s3!].map((s) => ({ id: s.id, objectKey: `k/${s.frameSeq}` })));
    const files = (await readdir(store.imagesDir)).sort();
    expect(files).not.toContain('0-0.jpg');
    expect(files).not.toContain('0-0-map.png');
    expect(files).not.toContain('0-2.jpg');
    expect(files).toContain('0-1.jpg');
    const stored = store.pendingUploads(10).map((s) => s.frameSeq);
    expect(stored[0]).toBe(1);
    const imageBytes = store.state().imageBytes;
    expect(imageBytes).toBe(stored.length * 100_000);
    // Its index goes out; the link drops before the acknowledgement; it goes out again.
    const first = store.take('samples', 10);
    expect(first?.records.map((r) => r.frameSeq)).toEqual([0, 2]);
    store.rewind();
    const again = store.take('samples', 10)!;
    expect([again.firstId, again.lastId]).toEqual([s0!.id, s2!.id]);
    expect(again.records.map((r) => r.frameSeq)).toEqual([0, 2]);
    store.ack('samples', again.firstId, again.lastId);
    // The index rows are gone; sample 1, inside the acknowledged range but not in the batch,
    // keeps its row and file, and no byte left the count.
    expect(store.take('samples', 10)).toBeUndefined();
    expect(store.pendingUploads(10).map((s) => s.frameSeq)).toEqual(stored);
    expect((await readdir(store.imagesDir)).sort()).toEqual(files);
    expect(store.state().imageBytes).toBe(imageBytes);
    expect(store.backlog().samples).toBe(stored.length);
  });

  it('a restart between an upload mark and its acknowledgement: the index is sent again, and its acknowledgement removes no file', async () => {
    const store = await open();
    const dir = join(store.imagesDir, '..');
    for (let i = 0; i < 5; i++)
      await store.addSample(sample('defect', i), Buffer.from(`jpeg-${i}`), Buffer.from(`png-${i}`));
    const [s0, , , s3] = store.pendingUploads(10);
    store.markUploaded([s0!, s3!].map((s) => ({ id: s.id, objectKey: `k/${s.frameSeq}` })));
    // The index is handed out; the process stops before the acknowledgement.
    expect(store.take('samples', 10)?.records.map((r) => r.frameSeq)).toEqual([0, 3]);
    store.close();
    // Sample 0's mark was committed but its files not removed yet; sample 1's image was lost.
    await writeFile(join(dir, 'images', '0-0.jpg'), 'jpeg-0');
    await writeFile(join(dir, 'images', '0-0-map.png'), 'png-0');
    await rm(join(dir, 'images', '0-1.jpg'));
    const next = await open(undefined, dir);
    expect(next.recovered).toEqual({ orphansRemoved: 2, missingMarked: 1 });
    const files = (await readdir(next.imagesDir)).sort();
    // Sample 1's map stays until the next start (the sweep ran before it was marked missing).
    expect(files).toEqual(['0-1-map.png', '0-2-map.png', '0-2.jpg', '0-4-map.png', '0-4.jpg']);
    const imageBytes = next.state().imageBytes;
    expect(imageBytes).toBe(2 * 11);
    const batch = next.take('samples', 10)!;
    expect(batch.records.map((r) => r.frameSeq)).toEqual([0, 3]);
    next.ack('samples', batch.firstId, batch.lastId);
    // The missing row and the stored one inside the range are kept; no file or byte went.
    const db = new Database(join(dir, 'store.sqlite'), { readonly: true });
    const states = db.prepare('SELECT seq, state FROM samples ORDER BY id').all();
    db.close();
    expect(states).toEqual([
      { seq: 1, state: 'missing' },
      { seq: 2, state: 'stored' },
      { seq: 4, state: 'stored' },
    ]);
    expect((await readdir(next.imagesDir)).sort()).toEqual(files);
    expect(next.state().imageBytes).toBe(imageBytes);
    expect(next.backlog().samples).toBe(2);
  });
});
