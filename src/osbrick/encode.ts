/**
 * Connection properties in os-brick's shapes (Cinder's connection_info), so that a payload made
 * here and one from a real Cinder driver are interchangeable.
 */
export interface IscsiConnectionData {
  target_discovered: boolean;
  volume_id: string;
  target_portal: string;
  target_iqn: string;
  target_lun: number;
  target_portals: string[];
  target_iqns: string[];
  target_luns: number[];
  auth_method?: 'CHAP';
  auth_username?: string;
  auth_password?: string;
  access_mode: 'rw';
  encrypted: boolean;
  discard: boolean;
}

export interface NvmeofConnectionData {
  target_nqn: string;
  portals: Array<[string, number, 'tcp']>;
  vol_uuid: string;
  volume_nguid: string;
  ns_id: string;
  host_nqn?: string;
  access_mode: 'rw';
  encrypted: boolean;
  discard: boolean;
}

export type ConnectionInfo =
  | { driver_volume_type: 'iscsi'; data: IscsiConnectionData }
  | { driver_volume_type: 'nvmeof'; data: NvmeofConnectionData };

export function iscsiConnectionInfo(v: {
  id: string;
  iqn: string;
  lun: number;
  portals: string[];
  chap?: { username: string; password: string } | undefined;
}): ConnectionInfo {
  const n = v.portals.length;
  return {
    driver_volume_type: 'iscsi',
    data: {
      target_discovered: false,
      volume_id: v.id,
      target_portal: v.portals[0]!,
      target_iqn: v.iqn,
      target_lun: v.lun,
      target_portals: [...v.portals],
      target_iqns: Array<string>(n).fill(v.iqn),
      target_luns: Array<number>(n).fill(v.lun),
      ...(v.chap ? { auth_method: 'CHAP' as const, auth_username: v.chap.username, auth_password: v.chap.password } : {}),
      access_mode: 'rw',
      encrypted: false,
      discard: true,
    },
  };
}

export function nvmeofConnectionInfo(v: { nqn: string; nsid: number; uuid: string; nguid: string; portals: Array<{ address: string; port: number }>; hostNqn?: string | undefined }): ConnectionInfo {
  return {
    driver_volume_type: 'nvmeof',
    data: {
      target_nqn: v.nqn,
      portals: v.portals.map((p) => [p.address, p.port, 'tcp']),
      vol_uuid: v.uuid,
      volume_nguid: v.nguid,
      ns_id: String(v.nsid),
      ...(v.hostNqn ? { host_nqn: v.hostNqn } : {}),
      access_mode: 'rw',
      encrypted: false,
      discard: true,
    },
  };
}
