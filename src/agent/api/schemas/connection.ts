/**
 * Connection properties in os-brick's shapes (Cinder's connection_info), per protocol.
 *
 * These schemas document the fields and refuse only what is not an object: the connector's own
 * checks (osbrick/decode) refuse the rest, naming the field and giving a code (BAD_IQN,
 * BAD_PORTAL, WRONG_VOLUME_TYPE...) and a hint that a schema error could not give.
 */
import type { JsonSchema } from './common.js';

const d = (description: string): JsonSchema => ({ description });

export const iscsiConnectionData: JsonSchema = {
  title: 'iSCSI connection properties (os-brick ISCSIConnector)',
  type: 'object',
  properties: {
    target_portal: d('"host:port"; IPv6 as "[addr]:port"'),
    target_iqn: d("the target's IQN"),
    target_lun: d('the LUN, an integer'),
    target_portals: d('multipath: one portal per path (with target_iqns)'),
    target_iqns: d('multipath: one IQN per portal'),
    target_luns: d('multipath: one LUN per portal (default: target_lun for every portal)'),
    target_discovered: d('boolean'),
    volume_id: d('the volume id, a string'),
    auth_method: d('"CHAP" or absent'),
    auth_username: d('CHAP user, with auth_method "CHAP"'),
    auth_password: d('CHAP secret, with auth_method "CHAP"'),
    discovery_auth_method: d('"CHAP" or absent'),
    discovery_auth_username: d('discovery CHAP user'),
    discovery_auth_password: d('discovery CHAP secret'),
    device_wwid: d("brick-lab's own key: the SCSI WWID read at attach"),
    access_mode: d('"rw" or "ro"'),
    encrypted: d('boolean'),
    discard: d('boolean'),
  },
};

export const nvmeofConnectionData: JsonSchema = {
  title: 'NVMe-oF connection properties (os-brick NVMeOFConnector)',
  type: 'object',
  properties: {
    target_nqn: d("the subsystem's NQN (current format)"),
    portals: d('[[address, port, "tcp"], ...] (current format)'),
    vol_uuid: d('the namespace UUID, with or without dashes'),
    volume_nguid: d('the namespace NGUID, 32 hex digits'),
    ns_id: d('the namespace id, an integer or a decimal string'),
    host_nqn: d('the host NQN to connect as'),
    nqn: d("the subsystem's NQN (older format)"),
    target_portal: d("the target's address (older format)"),
    target_port: d("the target's port (older format)"),
    transport_type: d('"tcp" (older format)'),
    access_mode: d('"rw" or "ro"'),
    encrypted: d('boolean'),
    discard: d('boolean'),
  },
};

export const localConnectionData: JsonSchema = {
  title: 'local connection properties (os-brick LocalConnector)',
  type: 'object',
  properties: { device_path: d('the absolute path of the block device, under /dev') },
};

/** Cinder's connection_info: the protocol and its data. */
export const connectionInfo: JsonSchema = {
  title: 'connection_info',
  type: 'object',
  properties: {
    driver_volume_type: d('"iscsi", "nvmeof" or "local": the connector it is sent to'),
    data: { description: "the protocol's connection properties", anyOf: [iscsiConnectionData, nvmeofConnectionData, localConnectionData] },
  },
};

/** What a connector route takes: connection_info, or its data alone, of the route's protocol. */
export const connectionProperties: JsonSchema = {
  description: 'os-brick connection properties: connection_info {driver_volume_type, data}, or the data alone, of the protocol in the path',
  type: 'object',
  anyOf: [connectionInfo, iscsiConnectionData, nvmeofConnectionData, localConnectionData],
};
