/**
 * Volume identifiers in the one form every layer compares: SCSI WWIDs as udev's scsi_id prints
 * them, NVMe NGUIDs as 32 lowercase hex digits, UUIDs lowercase with dashes.
 */

/** sysfs SCSI wwid ("naa.6001405...") in scsi_id's form ("36001405..."). */
export function scsiWwid(raw: string | null): string | null {
  if (!raw) return null;
  const w = raw.trim();
  const kind = w.slice(0, 4);
  if (w.length < 5) return w;
  if (kind === 'naa.') return `3${w.slice(4).toLowerCase()}`;
  if (kind === 'eui.') return `2${w.slice(4).toLowerCase()}`;
  if (kind === 't10.') return `1${w.slice(4).replace(/\s+/g, '_')}`;
  return w;
}

/**
 * An NGUID in any form seen (sysfs writes it dashed like a UUID, nvmet's configfs and Cinder plain,
 * nvme-cli with colons) as 32 lowercase hex digits, or null when it is not one.
 */
export function nguidHex(raw: string | null | undefined): string | null {
  if (!raw) return null;
  const hex = raw.trim().replace(/[-:]/g, '').toLowerCase();
  return /^[0-9a-f]{32}$/.test(hex) ? hex : null;
}

/** A UUID in any case, with or without dashes, as lowercase with dashes; null when it is not one. */
export function uuidDashed(raw: string | null | undefined): string | null {
  const hex = raw ? raw.replace(/-/g, '').toLowerCase() : '';
  if (!/^[0-9a-f]{32}$/.test(hex)) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** An NGUID (16 bytes, hex) derived from the volume's UUID, as Cinder's nvmet driver does. */
export function nguidFromUuid(uuid: string): string {
  return uuid.replace(/-/g, '').toLowerCase();
}

/**
 * The SCSI WWID an initiator will see for an LIO LUN: LIO builds an NAA 6 designator from its
 * OUI 00:14:05 and the hex digits of the unit serial (target_core_spc.c), and udev's scsi_id
 * prefixes NAA designators with "3".
 */
export function lioWwid(unitSerial: string): string {
  return `36001405${unitSerial.toLowerCase().replace(/[^0-9a-f]/g, '').slice(0, 25)}`;
}
