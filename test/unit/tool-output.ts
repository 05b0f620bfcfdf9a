/**
 * `iscsiadm -m session` and `nvme list-subsys -o json` as printed on a guest, parsed: the fixture
 * tests hold brick-lab's reading of sysfs against what these tools printed at the same moment
 * (both tools read the same sysfs directories; the oracle does not run them).
 */
export interface ToolSession {
  sid: number;
  portal: string;
  iqn: string;
  line: string;
}

/** `iscsiadm -m session` lines: "tcp: [3] 10.10.1.10:3260,1 iqn.2026-11.io.brick-lab:x (non-flash)". */
export function parseIscsiadmSessions(text: string): ToolSession[] {
  const out: ToolSession[] = [];
  for (const line of text.split('\n')) {
    const m = /^\S+:\s+\[(\d+)\]\s+(\S+?),(\d+)\s+(\S+)/.exec(line.trim());
    if (m) out.push({ sid: Number(m[1]), portal: m[2]!, iqn: m[4]!, line: line.trim() });
  }
  return out;
}

export interface ToolNvmeController {
  name: string;
  nqn: string;
  address: string;
  state: string;
}

/** `nvme list-subsys -o json` (nvme-cli 2.x): subsystems with their paths (controllers). */
export function parseNvmeListSubsys(json: string): ToolNvmeController[] {
  let doc: unknown;
  try {
    doc = JSON.parse(json);
  } catch {
    return [];
  }
  const out: ToolNvmeController[] = [];
  const hosts = Array.isArray(doc) ? doc : [doc];
  // JSON of another shape (null, a number, a list where an object belongs) gives nothing, not a TypeError.
  const list = <T>(v: unknown): T[] => (Array.isArray(v) ? v.filter((x): x is T => typeof x === 'object' && x !== null) : []);
  for (const h of list<{ Subsystems?: unknown }>(hosts)) {
    for (const s of list<{ NQN?: string; Paths?: unknown }>(h.Subsystems)) {
      for (const p of list<{ Name?: string; Address?: string; State?: string }>(s.Paths)) out.push({ name: p.Name ?? '', nqn: s.NQN ?? '', address: p.Address ?? '', state: p.State ?? '' });
    }
  }
  return out;
}

