import { afterEach, describe, expect, it, vi } from 'vitest';
import { IscsiConnector } from '../../src/connectors/iscsi.js';
import { PathsView } from '../../src/inventory/paths-view.js';
import { takeSnapshotSync } from '../../src/inventory/snapshot.js';
import { normalise } from '../../src/osbrick/index.js';
import { replayHostFs } from '../../src/system/hostfs-record.js';
import type { HostFs } from '../../src/system/hostfs.js';
import { UEVENT_SEQNUM } from '../../src/system/sysfs-read.js';
import type { IscsiProperties } from '../../src/volume/properties.js';
import { blockOf, FIXTURE_KERNELS, loadInventoryFixture } from './inventory-fixtures.js';

/**
 * The view the fetch-paths answers are made from (PathsView), on the reads a real guest answered
 * (the attached capture of each kernel, test/fixtures/README.md) with the uevent counter played by the
 * test: kept while the counter stands still and was quiet before the view was read, read afresh
 * when it moves, and the WWIDs read again when an answer needs them. e2e (lab.test.ts) shows the
 * same on a live guest: attaches, detaches and a rescan after a LUN reuse each seen at once.
 */
describe.each(FIXTURE_KERNELS)('captured on guest kernel %s', (kernel) => {
  const ATTACHED = loadInventoryFixture('inventory-attached.json', kernel);
  const D = ATTACHED.devices!;

  /** The capture, with the uevent counter and any reads a test changes played on top. */
  function host(): { fs: HostFs; counter: { value: string | null }; changed: Map<string, string>; reads: { n: number }; gone: Set<string> } {
    const replay = replayHostFs(ATTACHED.recording);
    const counter = { value: '100' as string | null };
    const changed = new Map<string, string>();
    const reads = { n: 0 };
    // Links udev has taken away since the capture.
    const gone = new Set<string>();
    const fs: HostFs = {
      ...replay,
      readText(p) {
        if (p === UEVENT_SEQNUM) return counter.value;
        reads.n++;
        return changed.get(p) ?? replay.readText(p);
      },
      readLinks(dir) {
        const all = replay.readLinks(dir);
        return gone.size === 0 ? all : all.filter((l) => !gone.has(l.name));
      },
    };
    return { fs, counter, changed, reads, gone };
  }

  /** A clock the test moves. */
  function clock(): { now: () => number; at: number } {
    const c = { at: 0, now: () => c.at };
    return c;
  }

  const views: PathsView[] = [];
  afterEach(() => {
    for (const v of views.splice(0)) v.stop();
  });

  /** A view of the capture on the test's clock (quiet after a second), stopped after the test. */
  function watched(): { h: ReturnType<typeof host>; c: ReturnType<typeof clock>; view: PathsView } {
    const h = host();
    const c = clock();
    const view = new PathsView(h.fs, 1000, c.now);
    views.push(view);
    return { h, c, view };
  }

  describe('PathsView', () => {
    it('reads the host afresh while the counter has not been quiet for quietMs, then keeps the view until it moves', () => {
      const h = host();
      const c = clock();
      const view = new PathsView(h.fs, 1000, c.now);
      const first = view.take();
      expect(first.kept).toBe(false);
      // The counter was first seen just now: the next read is not kept either.
      c.at = 500;
      expect(view.take().kept).toBe(false);
      // Quiet for a second: this read is kept, and answers from then on come from it, the same object.
      c.at = 1000;
      const read = view.take();
      expect(read.kept).toBe(false);
      c.at = 5000;
      const again = view.take();
      expect(again).toEqual({ snapshot: read.snapshot, kept: true });
      expect(view.stats).toEqual({ reads: 3, hits: 1, rehearsals: 0 });
      // A uevent: read afresh, and not kept until quiet again.
      h.counter.value = '101';
      expect(view.take().kept).toBe(false);
      expect(view.take().kept).toBe(false);
      c.at = 6000;
      view.take();
      expect(view.take().kept).toBe(true);
    });

    it('never keeps a view of a host without the counter', () => {
      const h = host();
      h.counter.value = null;
      const c = clock();
      const view = new PathsView(h.fs, 0, c.now);
      for (let i = 0; i < 3; i++) {
        c.at += 10_000;
        expect(view.take().kept).toBe(false);
      }
      expect(view.stats).toEqual({ reads: 3, hits: 0, rehearsals: 0 });
    });

    it('is the paths snapshot of the host, with session and controller states left out (they change with no uevent)', () => {
      const h = host();
      const view = new PathsView(h.fs, 0, clock().now);
      const s = view.take().snapshot;
      const fresh = takeSnapshotSync(h.fs, { scope: 'paths' });
      expect(s.iscsiSessions.length).toBeGreaterThan(0);
      expect(s.iscsiSessions.every((x) => x.state === null)).toBe(true);
      expect(s.nvmeControllers.every((x) => x.state === null)).toBe(true);
      const noStates = (x: typeof fresh): unknown => ({
        ...x,
        takenAt: null,
        iscsiSessions: x.iscsiSessions.map((y) => ({ ...y, state: null })),
        nvmeControllers: x.nvmeControllers.map((y) => ({ ...y, state: null })),
      });
      expect(noStates(s)).toEqual(noStates(fresh));
    });

    it('reads no sysfs attribute for a kept view, and the WWIDs again when asked: a LUN rescanned in place shows its new WWID', () => {
      const h = host();
      const c = clock();
      const view = new PathsView(h.fs, 0, c.now);
      view.take();
      const kept = view.take();
      expect(kept.kept).toBe(true);
      const before = h.reads.n;
      expect(view.take().snapshot).toBe(kept.snapshot);
      expect(h.reads.n).toBe(before);
      // The array gave da's LUN to another volume and the host rescanned it: no uevent, a new WWID.
      const da = kept.snapshot.scsiDevices.find((d) => d.block === blockOf(D.da))!;
      const wwidPath = Object.keys(ATTACHED.recording.text).find((p) => p.endsWith('/wwid') && p.includes(`/${da.hctl}/`))!;
      expect(wwidPath).toBeDefined();
      h.changed.set(wwidPath, 'naa.60014050000000000000000000000001');
      const withWwids = view.take({ wwids: true });
      expect(withWwids.kept).toBe(true);
      expect(withWwids.snapshot).not.toBe(kept.snapshot);
      expect(withWwids.snapshot.scsiDevices.find((d) => d.hctl === da.hctl)!.wwid).toBe('360014050000000000000000000000001');
      // The other devices are the same objects; the view keeps the new WWID from now on.
      expect(withWwids.snapshot.scsiDevices.filter((d) => d.hctl !== da.hctl).every((d) => kept.snapshot.scsiDevices.includes(d))).toBe(true);
      expect(view.take().snapshot.scsiDevices.find((d) => d.hctl === da.hctl)!.wwid).toBe('360014050000000000000000000000001');
    });

    it('answers a volume carrying its WWID by the WWID read now, not the one kept', async () => {
      const h = host();
      const iscsi = new IscsiConnector(h.fs);
      const a = ATTACHED.volumes.a;
      const props = normalise('iscsi', a.connectionInfo) as IscsiProperties;
      const view = new PathsView(h.fs, 0, clock().now);
      view.take();
      const kept = view.take().snapshot;
      const da = kept.scsiDevices.find((d) => d.block === blockOf(D.da))!;
      expect(da.wwid).toBeTruthy();
      const before = await iscsi.getVolumePaths({ ...props, deviceWwid: da.wwid }, view.take({ wwids: true }).snapshot);
      expect(before.devices).toEqual([blockOf(D.da)]);
      expect(before.paths).toHaveLength(1);
      // Rescanned after a LUN reuse: the same session and LUN now hold another volume, which is not this one.
      const wwidPath = Object.keys(ATTACHED.recording.text).find((p) => p.endsWith('/wwid') && p.includes(`/${da.hctl}/`))!;
      h.changed.set(wwidPath, 'naa.60014050000000000000000000000002');
      // Its by-path link names the LUN, which leads to the other volume's device: not this volume's path either.
      expect(await iscsi.getVolumePaths({ ...props, deviceWwid: da.wwid }, view.take({ wwids: true }).snapshot)).toEqual({ paths: [], devices: [] });
    });

    it('keeps an answer with the view it was made from: the same view gives the same answer, a view read again or changed gives one made afresh', async () => {
      const h = host();
      const iscsi = new IscsiConnector(h.fs);
      const props = normalise('iscsi', ATTACHED.volumes.a.connectionInfo) as IscsiProperties;
      const view = new PathsView(h.fs, 0, clock().now);
      view.take();
      const kept = view.take({ wwids: true }).snapshot;
      const first = await iscsi.getVolumePaths(props, kept);
      expect(first.devices).toEqual([blockOf(D.da)]);
      expect(await iscsi.getVolumePaths(props, kept)).toBe(first);
      // Other properties, another answer: the key is what the answer depends on (paths, WWID).
      const other = await iscsi.getVolumePaths({ ...props, deviceWwid: 'naa.60014050000000000000000000000003' }, kept);
      expect(other).toEqual({ paths: [], devices: [] });
      // A view read afresh (the counter moved) is another object: the answer is made again, equal while the host is.
      h.counter.value = '101';
      const fresh = view.take().snapshot;
      expect(fresh).not.toBe(kept);
      const again = await iscsi.getVolumePaths(props, fresh);
      expect(again).not.toBe(first);
      expect(again).toEqual(first);
    });

    it('keeps one answer for a volume however its paths are listed: in any order, and with portals the host has nothing at', async () => {
      const h = host();
      const iscsi = new IscsiConnector(h.fs);
      const view = new PathsView(h.fs, 0, clock().now);
      view.take();
      const kept = view.take().snapshot;
      const p = (ci: unknown): IscsiProperties => normalise('iscsi', ci) as IscsiProperties;
      // a: handed out with both portals (as Cinder does), attached through the first only.
      type Ci = { driver_volume_type: string; data: Record<string, unknown> };
      const a = ATTACHED.volumes.a.connectionInfo as Ci;
      const given = await iscsi.getVolumePaths(p(a), kept);
      const one = p({ ...a, data: { ...a.data, target_portals: undefined, target_iqns: undefined, target_luns: undefined } });
      expect(one.paths).toHaveLength(1);
      expect(await iscsi.getVolumePaths(one, kept)).toBe(given);
      expect(given.paths).toHaveLength(1);
      // m, on both: the portals listed the other way round, the same answer; one of its portals
      // alone is another answer (one link), as both hold a session.
      const m = ATTACHED.volumes.m!.connectionInfo as Ci;
      const both = await iscsi.getVolumePaths(p(m), kept);
      expect(both.paths).toHaveLength(2);
      const d = m.data as { target_portals: string[]; target_iqns: string[]; target_luns: number[] };
      const turned = p({ ...m, data: { ...m.data, target_portals: [...d.target_portals].reverse(), target_iqns: [...d.target_iqns].reverse(), target_luns: [...d.target_luns].reverse() } });
      expect(turned.paths[0]!.portal).not.toBe(p(m).paths[0]!.portal);
      expect(await iscsi.getVolumePaths(turned, kept)).toBe(both);
      const alone = await iscsi.getVolumePaths(p({ ...m, data: { ...m.data, target_portals: [d.target_portals[1]], target_iqns: [d.target_iqns[1]], target_luns: [d.target_luns[1]] } }), kept);
      expect(alone.paths).toHaveLength(1);
      expect(alone).not.toEqual(both);
    });

    it('answers the available volumes from the kept view while it holds, and afresh once a WWID read again differs (a LUN rescanned in place, no uevent)', async () => {
      // The connector's own view (one per host, on performance.now's clock, quiet for a second).
      vi.useFakeTimers({ toFake: ['performance'] });
      try {
        const h = host();
        const iscsi = new IscsiConnector(h.fs);
        await iscsi.getAllAvailableVolumes();
        vi.advanceTimersByTime(2000);
        await iscsi.getAllAvailableVolumes();
        const before = await iscsi.getAllAvailableVolumes();
        expect(await iscsi.getAllAvailableVolumes()).toBe(before);
        const da = before.find((v) => v.devices.includes(blockOf(D.da)))!;
        expect(da.identity.wwid).toBeTruthy();
        const hctl = takeSnapshotSync(h.fs, { scope: 'paths' }).scsiDevices.find((d) => d.block === blockOf(D.da))!.hctl;
        const wwidPath = Object.keys(ATTACHED.recording.text).find((p) => p.endsWith('/wwid') && p.includes(`/${hctl}/`))!;
        h.changed.set(wwidPath, 'naa.60014050000000000000000000000004');
        const after = await iscsi.getAllAvailableVolumes();
        expect(after).not.toBe(before);
        expect(after.find((v) => v.devices.includes(blockOf(D.da)))!.identity.wwid).toBe('360014050000000000000000000000004');
        expect(after.filter((v) => !v.devices.includes(blockOf(D.da)))).toEqual(before.filter((v) => v !== da));
      } finally {
        vi.useRealTimers();
      }
    });

    it('keeps the view warm from the start when told to (the agent): read once the counter is quiet, with no call, its answers\' work done with it, so the first answer comes from a kept view', async () => {
      const { c, view } = watched();
      // What answers need of a new view is made with it (a preparer that throws is let be).
      const prepared: unknown[] = [];
      view.prepare('fails', () => {
        throw new Error('no');
      });
      const order: string[] = [];
      view.prepare('indexes', (s) => {
        prepared.push(s);
        order.push('prepare');
      });
      // Then the rehearsal (the agent's routes asked about the view's volumes, src/agent/rehearse.ts).
      const rehearsed: unknown[] = [];
      view.rehearse(async (s) => {
        rehearsed.push(s);
        order.push('rehearse');
      });
      view.keepWarm(10);
      await new Promise((r) => setTimeout(r, 40));
      expect(view.stats.reads).toBe(0); // the counter was first read just now
      c.at = 1500;
      await new Promise((r) => setTimeout(r, 40));
      expect(view.stats.reads).toBe(1);
      const first = view.take();
      expect(first.kept).toBe(true);
      expect(view.stats).toEqual({ reads: 1, hits: 1, rehearsals: 1 });
      expect(prepared).toEqual([first.snapshot]);
      expect(prepared[0]).toBe(first.snapshot);
      expect(rehearsed[0]).toBe(first.snapshot);
      expect(order).toEqual(['prepare', 'rehearse']);
    });

    it('takes in by-path links udev changed after the kernel was quiet, in the background, and prepares and rehearses that view', async () => {
      const { h, c, view } = watched();
      const prepared: unknown[] = [];
      const rehearsed: unknown[] = [];
      view.prepare('p', (s) => prepared.push(s));
      view.rehearse(async (s) => void rehearsed.push(s));
      view.watch(10, 60_000);
      view.take();
      c.at = 1500;
      await new Promise((r) => setTimeout(r, 40));
      const before = view.take();
      expect(before.kept).toBe(true);
      expect(view.stats).toMatchObject({ reads: 2, rehearsals: 1 });
      // udev takes a link away with no uevent of the kernel's since: the watch sees the listing change.
      const link = before.snapshot.links.find((l) => l.dir === 'by-path')!;
      h.gone.add(link.name);
      await new Promise((r) => setTimeout(r, 40));
      expect(view.stats).toMatchObject({ reads: 2, rehearsals: 2 });
      expect(prepared).toHaveLength(2);
      expect(rehearsed[1]).toBe(prepared[1]);
      const after = view.take();
      expect(after.kept).toBe(true);
      expect(after.snapshot).toBe(prepared[1]);
      expect(after.snapshot.links.some((l) => l.name === link.name)).toBe(false);
    });

    it('does not take a rehearsal\'s calls for callers: they keep no watch going', async () => {
      const { h, c, view } = watched();
      view.rehearse(async () => {
        view.take();
        view.take();
      });
      view.watch(10, 2000);
      view.take();
      c.at = 1500;
      await new Promise((r) => setTimeout(r, 40));
      // Kept on the watch's read after the counter was quiet, and rehearsed: no caller since 0.
      expect(view.stats).toMatchObject({ reads: 2, hits: 0, rehearsals: 1 });
      h.counter.value = '200';
      c.at = 1600;
      await new Promise((r) => setTimeout(r, 40));
      c.at = 3000;
      await new Promise((r) => setTimeout(r, 40));
      // Two seconds since the last caller (the rehearsal's calls at 1500 are not callers'): the
      // watch stopped, and the change is not read.
      expect(view.stats).toMatchObject({ reads: 2, hits: 0, rehearsals: 1 });
    });

    it('reads the view again in the background once the counter is quiet after a change, while calls come, and stops when they do not', async () => {
      const { h, c, view } = watched();
      view.watch(10, 60_000);
      c.at = 2000;
      view.take();
      expect(view.stats.reads).toBe(1);
      // A change, then quiet: read by the watch, so the next answer is made from a kept view.
      h.counter.value = '200';
      await new Promise((r) => setTimeout(r, 40));
      expect(view.stats.reads).toBe(1); // first seen now; not quiet yet
      c.at = 3500;
      await new Promise((r) => setTimeout(r, 40));
      expect(view.stats.reads).toBe(2);
      expect(view.take().kept).toBe(true);
      // No call for longer than idleMs: the watch stops, and reads nothing more.
      c.at = 100_000;
      await new Promise((r) => setTimeout(r, 40));
      h.counter.value = '201';
      c.at = 200_000;
      await new Promise((r) => setTimeout(r, 40));
      expect(view.stats.reads).toBe(2);
    });
  });
});
