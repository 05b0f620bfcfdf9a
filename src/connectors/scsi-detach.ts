import type { HostSnapshot } from '../inventory/model.js';
import { readMultipathdPaths } from '../inventory/tools.js';
import type { HostFs } from '../system/hostfs.js';
import type { Detach } from './base.js';
import { deleteScsiDevice, heldBy, waitForDevice } from './block.js';
import { flushMultipathMap, resumeIfSuspended, type MapFlush } from './multipath.js';

/**
 * The SCSI half of a detach, the same over every SCSI transport (iSCSI, FC): the volume's disks
 * (`blocks`) and the dm-multipath maps over them or carrying its WWID go, maps first, each disk
 * flushed and deleted, and multipathd seen to drop the deleted paths. Holders the connector did
 * not make stop it before anything is touched (Detach.refuseHeld). Returns the links udev made for
 * what it removes, read before they go: the caller waits for them at its very end, after its
 * transport's own steps (an iSCSI logout).
 */
export async function removeScsiVolume(fs: HostFs, d: Detach, snap: HostSnapshot, blocks: Set<string>, wwid: string | null, force: boolean): Promise<Map<string, string>> {
  const maps = snap.multipathMaps.filter((m) => m.slaves.some((s) => blocks.has(s)) || (wwid && m.wwid === wwid));
  d.refuseHeld(heldBy(snap, blocks, maps.map((m) => m.dm)));
  const links = d.linksOf([...blocks, ...maps.map((m) => m.dm)]);
  for (const m of maps) {
    const resume = resumeIfSuspended(fs, m);
    if (resume) await d.step(resume.what, resume.run);
    let how = 'removed' as MapFlush;
    await d.step(`multipath map ${m.name ?? m.dm}`, async () => (how = await flushMultipathMap(m, force)));
    if (how === 'deferred') d.left.push(`multipath map ${m.name ?? m.dm}: held open; its table now fails every I/O and dm removes it at its last close`);
  }
  for (const b of blocks) {
    if (!(await fs.exists(`/sys/block/${b}`))) continue;
    // force=False and a failed flush: stop here, on purpose (os-brick keeps the data safe).
    await d.flush(`/dev/${b}`);
    await d.step(`scsi device ${b}`, () => deleteScsiDevice(fs, b));
  }
  if (d.removed.some((r) => r.startsWith('multipath map'))) {
    // multipathd drops deleted paths from its own tables a little later (bug 1924652 is about it
    // being slow): wait, so that "detached" means multipathd forgot them too. A multipathd that
    // does not answer once is asked again; still silent at the end, that is the error reported.
    let silent: string | null = null;
    const dropped = async (): Promise<boolean> => {
      try {
        const held = await readMultipathdPaths();
        silent = null;
        return !held.some((x) => blocks.has(x.dev));
      } catch (e) {
        silent = (e as Error).message;
        return false;
      }
    };
    await waitForDevice('multipathd to drop the deleted paths', dropped, 10_000).catch((e: Error) => d.errors.push(silent ? `${e.message}: ${silent}` : e.message));
  }
  return links;
}
