import type { HostFs, HostFsWrite } from './hostfs.js';
import { UEVENT_SEQNUM } from './sysfs-read.js';

export interface HostFsRecording {
  text: Record<string, string | null>;
  /** Base64. */
  binary?: Record<string, string | null>;
  list: Record<string, string[]>;
  link: Record<string, string | null>;
  exists: Record<string, boolean>;
  /** Writes made through the HostFs, in order; left out when there were none. */
  writes?: HostFsWrite[];
}

/** Wraps a HostFs and keeps every answer, to be saved as a fixture. */
export function recordingHostFs(inner: HostFs): { fs: HostFs; recording: HostFsRecording } {
  const recording: HostFsRecording = { text: {}, binary: {}, list: {}, link: {}, exists: {} };
  return {
    recording,
    fs: {
      readText(p) {
        return (recording.text[p] = inner.readText(p));
      },
      readBinary(p) {
        const b = inner.readBinary(p);
        recording.binary![p] = b ? Buffer.from(b).toString('base64') : null;
        return b;
      },
      list(p) {
        return (recording.list[p] = inner.list(p));
      },
      link(p) {
        return (recording.link[p] = inner.link(p));
      },
      // Kept as the listing and a readlink per entry: the answers readLinks stands for, so a
      // recording needs no field of its own and replays the same either way.
      readLinks(dir) {
        const links = inner.readLinks(dir);
        recording.list[dir] = links.map((l) => l.name);
        for (const l of links) recording.link[`${dir}/${l.name}`] = l.target;
        return links;
      },
      exists(p) {
        return (recording.exists[p] = inner.exists(p));
      },
      async write(p, text) {
        (recording.writes ??= []).push({ path: p, text });
        await inner.write(p, text);
      },
    },
  };
}

const FC_CLASSES = new Set(['/sys/class/fc_host', '/sys/class/fc_remote_ports']);
const inVarLibIscsi = (p: string): boolean => p === '/var/lib/iscsi' || p.startsWith('/var/lib/iscsi/');

/**
 * Replays a recording; a read the recording does not hold is an error (the fixture is stale).
 * Writes change nothing that is read afterwards: they are kept in `written`, in order, for a test
 * to look at.
 */
export function replayHostFs(r: HostFsRecording): HostFs & { written: HostFsWrite[] } {
  const written: HostFsWrite[] = [];
  const miss = (kind: string, p: string): never => {
    throw new Error(`fixture has no ${kind} of ${p}: re-capture it`);
  };
  // A recording made before snapshots read the FC transport's classes replays as a host without
  // FC ports (no fc_host, no remote port); any other listing missing is stale.
  // Likewise a recording made before the readers looked in trixie's iSCSI database (/var/lib/iscsi)
  // was made on a bookworm guest, which has none (open-iscsi 2.1.8 keeps it under /etc/iscsi). A
  // recording that read it (a trixie guest's, open-iscsi 2.1.11) holds every read there: one it
  // lacks is stale, not an empty database.
  const predatesVarLibIscsi = !Object.keys(r.list).some(inVarLibIscsi) && !Object.keys(r.exists).some(inVarLibIscsi);
  const list = (p: string): string[] => (p in r.list ? r.list[p]! : FC_CLASSES.has(p) || (predatesVarLibIscsi && p.startsWith('/var/lib/iscsi/')) ? [] : miss('listing', p));
  const link = (p: string): string | null => (p in r.link ? r.link[p]! : miss('readlink', p));
  return {
    readText(p) {
      if (p in r.text) return r.text[p]!;
      // A recording made before snapshots read diskseq replays as a kernel without it (before
      // 5.15): every disk's link is read, as it was then. Any other read missing is stale.
      if (p.startsWith('/sys/block/') && p.endsWith('/diskseq')) return null;
      // Likewise the uevent counter (PathsView): replayed as a host without one, read afresh every time.
      if (p === UEVENT_SEQNUM) return null;
      return miss('read', p);
    },
    readBinary(p) {
      if (!r.binary || !(p in r.binary)) return miss('binary read', p);
      const b = r.binary[p];
      return b === null || b === undefined ? null : new Uint8Array(Buffer.from(b, 'base64'));
    },
    list,
    link,
    readLinks(dir) {
      return list(dir).map((name) => ({ name, target: link(`${dir}/${name}`) }));
    },
    exists(p) {
      if (p in r.exists) return r.exists[p]!;
      if (predatesVarLibIscsi && inVarLibIscsi(p)) return false;
      return miss('exists', p);
    },
    written,
    async write(p, text) {
      written.push({ path: p, text });
    },
  };
}
