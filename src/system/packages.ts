/**
 * Versions of the storage tools, read from dpkg's status file instead of running each tool's
 * --version: under TCG a targetcli start alone costs seconds, the status file costs nothing, and
 * the package version is what a bug report needs anyway.
 */
export const STORAGE_PACKAGES = [
  'open-iscsi',
  'nvme-cli',
  'targetcli-fb',
  'python3-rtslib-fb',
  'multipath-tools',
  'lsscsi',
  'sg3-utils',
  'udev',
  'kmod',
  'python3-os-brick',
] as const;

export function parseDpkgStatus(text: string, wanted: readonly string[] = STORAGE_PACKAGES): Record<string, string | null> {
  const out: Record<string, string | null> = Object.fromEntries(wanted.map((p) => [p, null]));
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (m) fields.set(m[1]!, m[2]!);
    }
    const pkg = fields.get('Package');
    if (!pkg || !(pkg in out)) continue;
    // Status is "want flag state"; only the state "installed" counts (not half-installed, not-installed).
    if (!/ installed$/.test(fields.get('Status') ?? '')) continue;
    out[pkg] = fields.get('Version') ?? null;
  }
  return out;
}
