import { describe, refuse } from './fields.js';

/**
 * The LUN as udev's path_id writes it in by-path names, and os-brick likewise: below 256 in
 * decimal, from 256 on as `0x%04x%04x00000000` of (lun & 0xffff, lun >> 16 & 0xffff), so LUN 300
 * is "0x012c000000000000" (seen as such in a Debian 6.1 guest's /dev/disk/by-path).
 */
export function lunForPath(lun: number): string {
  if (!Number.isSafeInteger(lun) || lun < 0) refuse('lun', `must be a whole number from 0 (got ${describe(lun)})`, 'BAD_LUN');
  if (lun < 256) return String(lun);
  const hex4 = (n: number): string => n.toString(16).padStart(4, '0');
  return `0x${hex4(lun % 0x10000)}${hex4(Math.floor(lun / 0x10000) % 0x10000)}00000000`;
}

/** The basename under /dev/disk/by-path; udev forbids brackets there, so an IPv6 portal loses them. */
export function byPathName(p: { portal: string; iqn: string; lun: number }): string {
  return `ip-${p.portal.replace(/[[\]]/g, '')}-iscsi-${p.iqn}-lun-${lunForPath(p.lun)}`;
}

/**
 * The end of an FC disk's by-path name, after the HBA's own part ("pci-0000:00:06.0"): udev's
 * path_id writes the target port's name with 0x and the LUN as above, and so does os-brick.
 */
export function fcByPathSuffix(p: { wwpn: string; lun: number }): string {
  return `-fc-0x${p.wwpn}-lun-${lunForPath(p.lun)}`;
}
