/**
 * The kinds of thing a detach can leave behind on a host (the oracle's findings), in the order
 * reports list them. docs/oracle.md says what each is and where the kernel shows it.
 */
export const ORPHAN_KINDS = [
  'scsi-device',
  'block-device',
  'by-path-link',
  'by-id-link',
  'holder',
  'multipath-map',
  'multipathd-path',
  'iscsi-session',
  'iscsi-node-record',
  'iscsi-discovery-record',
  'iscsi-iface',
  'nvme-controller',
  'nvme-namespace',
] as const;

export type OrphanKind = (typeof ORPHAN_KINDS)[number];
