import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * The one way the inventory reads a host: sysfs, /dev links and iscsid's node records. Real on a
 * node; a recorded copy of the same reads in unit tests (captured from a real guest), so parsers
 * are tested on what a kernel really wrote and not on hand-made trees.
 */
export interface HostFs {
  readText(path: string): Promise<string | null>;
  list(path: string): Promise<string[]>;
  link(path: string): Promise<string | null>;
  exists(path: string): Promise<boolean>;
}

/**
 * Synchronous reads behind an async face: sysfs files are tiny and answered from kernel memory,
 * and under TCG a trip through libuv's thread pool per file costs far more than the read itself
 * (a snapshot makes hundreds of them).
 */
export const realHostFs: HostFs = {
  async readText(path) {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch {
      return null;
    }
  },
  async list(path) {
    try {
      return readdirSync(path).sort();
    } catch {
      return [];
    }
  },
  async link(path) {
    try {
      return readlinkSync(path);
    } catch {
      return null;
    }
  },
  async exists(path) {
    return existsSync(path);
  },
};

export interface HostFsRecording {
  text: Record<string, string | null>;
  list: Record<string, string[]>;
  link: Record<string, string | null>;
  exists: Record<string, boolean>;
}

/** Wraps a HostFs and keeps every answer, to be saved as a fixture. */
export function recordingHostFs(inner: HostFs): { fs: HostFs; recording: HostFsRecording } {
  const recording: HostFsRecording = { text: {}, list: {}, link: {}, exists: {} };
  return {
    recording,
    fs: {
      async readText(p) {
        return (recording.text[p] = await inner.readText(p));
      },
      async list(p) {
        return (recording.list[p] = await inner.list(p));
      },
      async link(p) {
        return (recording.link[p] = await inner.link(p));
      },
      async exists(p) {
        return (recording.exists[p] = await inner.exists(p));
      },
    },
  };
}

/** Replays a recording; a read the recording does not hold is an error (the fixture is stale). */
export function replayHostFs(r: HostFsRecording): HostFs {
  const miss = (kind: string, p: string): never => {
    throw new Error(`fixture has no ${kind} of ${p}: re-capture it`);
  };
  return {
    async readText(p) {
      return p in r.text ? r.text[p]! : miss('read', p);
    },
    async list(p) {
      return p in r.list ? r.list[p]! : miss('listing', p);
    },
    async link(p) {
      return p in r.link ? r.link[p]! : miss('readlink', p);
    },
    async exists(p) {
      return p in r.exists ? r.exists[p]! : miss('exists', p);
    },
  };
}
