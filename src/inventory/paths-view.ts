import { AsyncLocalStorage } from 'node:async_hooks';
import { realHostFs, type HostFs } from '../system/hostfs.js';
import { UEVENT_SEQNUM } from '../system/sysfs-read.js';
import { scsiWwid } from '../volume/ids.js';
import { links, type BlockIndex } from './read-block.js';
import { readHost } from './snapshot.js';
import type { HostSnapshot } from './model.js';

/**
 * The 'paths' snapshot that the read-only answers of the fetch-paths API (volume paths, all
 * available volumes) are made from, read once and kept for as long as the kernel shows that
 * nothing it describes changed; never used by an attach, a detach or the oracle, which read afresh.
 *
 * Why a kept view is the kernel's current state:
 * - Every device the kernel adds, removes, renames or changes (a SCSI device or disk, an iSCSI
 *   session or connection, an NVMe controller or namespace, a dm map made, reloaded and resumed,
 *   renamed) goes out as a uevent, and each uevent adds one to /sys/kernel/uevent_seqnum. It is
 *   read (one pread of a held descriptor) before every answer: another number, and the view is
 *   read afresh.
 * - A few attributes are set right after their device's uevent (an iSCSI connection's portal is
 *   set by iscsid once the connection exists; dm holder links come with a table load, the map's
 *   uevent with its resume): a view is kept only when the counter had not moved for `quietMs`
 *   before its reading started, so these have landed by then; one read sooner is used once.
 * - What changes with no uevent at all is left out or read again at every answer: iSCSI
 *   sessions' and NVMe controllers' states are null in a view (no answer made from it uses them),
 *   and each SCSI device's WWID, which a rescan of a LUN the array gave to another volume changes
 *   in place, is read again for the answers that match or name devices by WWID.
 * - /dev/disk/by-path is udev's, not the kernel's: it is listed again whenever the directory's
 *   stat changed (HostFs.readLinks).
 * A host without the counter (a recording in tests, a kernel without sysfs) is read afresh on
 * every call.
 *
 * `watch` keeps the view warm while someone asks: every `intervalMs` it reads the counter, and
 * once it has been quiet for `quietMs` after a change, it reads the view again in the background,
 * runs the preparers on it and then the rehearsal (`rehearse`), so that the first answer after an
 * attach does not pay for any of it. It stops after `idleMs` without a call; the rehearsal's own
 * calls are not calls.
 */
export class PathsView {
  private kept: { seq: string; snapshot: HostSnapshot; blocks: BlockIndex } | null = null;
  private seq: string | null = null;
  private seqSince = 0;
  private lastCall = 0;
  private timer: NodeJS.Timeout | null = null;
  private reads = 0;
  private hits = 0;
  private warmWhenAsked = false;
  private readonly preparers = new Map<string, (s: HostSnapshot) => void>();
  private rehearsal: ((s: HostSnapshot) => Promise<void>) | null = null;
  private rehearsing = false;
  private pending: HostSnapshot | null = null;
  private rehearsals = 0;

  constructor(
    private readonly fs: HostFs = realHostFs,
    private readonly quietMs = 1000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * The host's 'paths' snapshot now: the kept one when the counter says it still holds (with its
   * changing attributes read again), else read afresh. `wwids`: the SCSI devices' WWIDs are read
   * again too (for an answer that matches or reports devices by WWID). The object is shared with
   * later calls while nothing changed: never change it.
   */
  take(opts: { wwids?: boolean } = {}): { snapshot: HostSnapshot; kept: boolean } {
    const asked = rehearsalCalls.getStore() !== this;
    if (asked) {
      this.lastCall = this.now();
      if (this.warmWhenAsked && !this.timer) this.watch();
    }
    const seq = this.counter();
    const k = this.kept;
    if (seq !== null && k !== null && k.seq === seq) {
      if (asked) this.hits++;
      const snapshot = this.refreshed(k.snapshot, k.blocks, opts.wwids === true);
      if (snapshot !== k.snapshot) k.snapshot = snapshot;
      return { snapshot, kept: true };
    }
    return { snapshot: this.read(seq), kept: false };
  }

  /** How many views were read afresh, how many callers' answers were made from a kept one, and how many rehearsals ran. */
  get stats(): { reads: number; hits: number; rehearsals: number } {
    return { reads: this.reads, hits: this.hits, rehearsals: this.rehearsals };
  }

  /**
   * Watch from now on, as if a call had just come, and from then on every call starts `watch`
   * when it is not running (the node agent's setting, from its start: the counter's quiet is
   * measured from when it is first read, so a view read in the agent's first second could not be
   * kept, and the first calls after a start or a restart would each read the host afresh).
   */
  keepWarm(intervalMs?: number): void {
    this.warmWhenAsked = true;
    this.lastCall = this.now();
    this.counter();
    this.watch(intervalMs);
  }

  /**
   * Work the answers do on a new view (indexes, an answer that takes no arguments), done when the
   * watch reads one in the background, so that the first answer after a change does not pay for
   * it. By key: a connector made again replaces its own. A preparer that throws is ignored (the
   * answer does the work itself then, and meets the error there).
   */
  prepare(key: string, fn: (s: HostSnapshot) => void): void {
    this.preparers.set(key, fn);
  }

  /** Keep the view warm in the background while calls come (see the class); unref'd, stops by itself. */
  watch(intervalMs = 500, idleMs = 300_000): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.now() - this.lastCall > idleMs) {
        this.stop();
        return;
      }
      const seq = this.counter();
      const k = this.kept;
      if (seq !== null && k?.seq !== seq && this.now() - this.seqSince >= this.quietMs) {
        const read = this.read(seq);
        if (this.kept?.snapshot === read) this.madeReady(read);
      } else if (k && k.seq === seq) {
        // udev makes and removes by-path links after the kernel's uevents (under TCG, seconds
        // after them when many came): a listing that changed since is taken in here, as a
        // caller's take() would, and the view that holds it made ready.
        const now = this.refreshed(k.snapshot, k.blocks, false);
        if (now !== k.snapshot) this.madeReady((k.snapshot = now));
      }
    }, intervalMs).unref();
  }

  /**
   * What to run once the watch has read and prepared a new view: the node agent asks its own
   * fetch-paths routes about the volumes the view shows (src/agent/rehearse.ts), so that the
   * first caller after a change finds their code optimised on this host's objects, run by QEMU
   * from translations it already made, and the answers kept with the view. Its calls to take()
   * neither count as calls nor keep the watch going; one rehearsal at a time (a view read while
   * one runs is rehearsed after it, if still the kept one); a rehearsal that throws is ignored
   * (the callers' own answers meet the error).
   */
  rehearse(fn: ((s: HostSnapshot) => Promise<void>) | null): void {
    this.rehearsal = fn;
  }

  /** Run the rehearsal on a view now (the watch's; a test's). Resolves when it ended, whatever its outcome. */
  async rehearseOn(s: HostSnapshot): Promise<void> {
    const fn = this.rehearsal;
    if (!fn) return;
    if (this.rehearsing) {
      this.pending = s;
      return;
    }
    this.rehearsing = true;
    this.rehearsals++;
    try {
      await rehearsalCalls.run(this, () => fn(s));
    } catch {
      // the callers' own answers meet it
    } finally {
      this.rehearsing = false;
    }
    const next = this.pending;
    this.pending = null;
    if (next && next === this.kept?.snapshot) await this.rehearseOn(next);
  }

  /** A view the watch now keeps: its preparers run, then its rehearsal. */
  private madeReady(s: HostSnapshot): void {
    this.prepareOn(s);
    void this.rehearseOn(s);
  }

  /** Run the preparers on a view (the watch's, or a template agent's training view). */
  prepareOn(s: HostSnapshot): void {
    for (const fn of this.preparers.values()) {
      try {
        fn(s);
      } catch {
        // the answer will do it, and report what fails
      }
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The kernel's uevent counter, noting when it was first seen at its value. */
  private counter(): string | null {
    const seq = this.fs.readText(UEVENT_SEQNUM);
    if (seq !== this.seq) {
      this.seq = seq;
      this.seqSince = this.now();
    }
    return seq;
  }

  /** Read the host afresh (the counter `seq` read just before); kept when the counter was quiet long enough before. */
  private read(seq: string | null): HostSnapshot {
    const quiet = seq !== null && this.now() - this.seqSince >= this.quietMs;
    const { snapshot, blocks } = readHost(this.fs, { scope: 'paths' });
    // States change with no uevent: a view says nothing of them rather than something old.
    for (const x of snapshot.iscsiSessions) x.state = null;
    for (const c of snapshot.nvmeControllers) c.state = null;
    this.reads++;
    this.kept = quiet ? { seq: seq!, snapshot, blocks } : null;
    return snapshot;
  }

  /** The kept snapshot with what changes without a uevent read again: the same object when nothing did. */
  private refreshed(s: HostSnapshot, blocks: BlockIndex, wwids: boolean): HostSnapshot {
    const fs = this.fs;
    const byPath = links(fs, blocks, ['by-path']);
    let changed = byPath !== s.links && !sameLinks(byPath, s.links);
    let devices = s.scsiDevices;
    if (wwids) {
      // A new list only when a WWID differs (a LUN rescanned in place).
      for (let i = 0; i < s.scsiDevices.length; i++) {
        const d = s.scsiDevices[i]!;
        const wwid = scsiWwid(fs.readText(blocks.scsiPaths.get(d.hctl)?.wwid ?? `${d.sysfs}/device/wwid`));
        if (wwid === d.wwid) continue;
        if (devices === s.scsiDevices) devices = [...s.scsiDevices];
        devices[i] = { ...d, wwid };
        changed = true;
      }
    }
    return changed ? { ...s, scsiDevices: devices, links: byPath } : s;
  }
}

const sameLinks = (a: HostSnapshot['links'], b: HostSnapshot['links']): boolean =>
  a.length === b.length && a.every((l, i) => l.name === b[i]!.name && l.target === b[i]!.target && l.dangling === b[i]!.dangling && l.dir === b[i]!.dir);

/** The view whose rehearsal the current call belongs to (its take() calls are not callers'). */
const rehearsalCalls = new AsyncLocalStorage<PathsView>();

/** Whether the current call is a view's rehearsal (the agent leaves those out of its request log). */
export function inRehearsal(): boolean {
  return rehearsalCalls.getStore() !== undefined;
}

/** One view per host, shared by every connector of the process (the agent's). */
const views = new WeakMap<HostFs, PathsView>();

export function pathsView(fs: HostFs = realHostFs): PathsView {
  let v = views.get(fs);
  if (!v) views.set(fs, (v = new PathsView(fs)));
  return v;
}
