import type { Protocol } from '../../volume/protocol.js';
/**
 * The external connector protocol, version 1: how brick-lab talks to a vendor's connector
 * program. One process per call; the request is one JSON document on the program's stdin, the
 * reply one JSON document on its stdout (docs/connector-protocol.md is the vendor's side of it).
 *
 * The shapes are os-brick's: the request carries os-brick's connection_properties dict (Cinder's
 * connection_info["data"]) untouched, and the results are what os-brick's connector methods return.
 *
 * REQUEST_SCHEMA and REPLY_SCHEMA state the same rules as validateRequest and validateReply; the
 * validators are written by hand so that a refusal names the field and says what was expected.
 */

export const PROTOCOL_VERSION = 1 as const;

export const OPERATIONS = ['connect_volume', 'disconnect_volume', 'get_volume_paths', 'get_all_available_volumes', 'get_search_path'] as const;
export type Operation = (typeof OPERATIONS)[number];


/** os-brick's connection_properties: Cinder's connection_info["data"], passed through as sent. */
export type OsBrickProperties = Record<string, unknown>;

/** os-brick's device_info, as connect_volume returns it; keys beyond these are kept and sent back. */
export interface OsBrickDeviceInfo {
  type: 'block';
  path: string;
  scsi_wwn?: string | null;
  multipath_id?: string | null;
  [key: string]: unknown;
}

interface RequestBase {
  version: typeof PROTOCOL_VERSION;
  protocol: Protocol;
}

export interface ConnectVolumeRequest extends RequestBase {
  operation: 'connect_volume';
  connection_properties: OsBrickProperties;
  multipath: boolean;
}

export interface DisconnectVolumeRequest extends RequestBase {
  operation: 'disconnect_volume';
  connection_properties: OsBrickProperties;
  /** What connect_volume returned for this volume, or null when it is not known. */
  device_info: OsBrickDeviceInfo | null;
  force: boolean;
  ignore_errors: boolean;
}

export interface GetVolumePathsRequest extends RequestBase {
  operation: 'get_volume_paths';
  connection_properties: OsBrickProperties;
}

export interface GetAllAvailableVolumesRequest extends RequestBase {
  operation: 'get_all_available_volumes';
  connection_properties: OsBrickProperties | null;
}

export interface GetSearchPathRequest extends RequestBase {
  operation: 'get_search_path';
  connection_properties: OsBrickProperties | null;
}

export interface RequestByOperation {
  connect_volume: ConnectVolumeRequest;
  disconnect_volume: DisconnectVolumeRequest;
  get_volume_paths: GetVolumePathsRequest;
  get_all_available_volumes: GetAllAvailableVolumesRequest;
  get_search_path: GetSearchPathRequest;
}
export type ConnectorRequest = RequestByOperation[Operation];

export interface ResultByOperation {
  connect_volume: OsBrickDeviceInfo;
  disconnect_volume: null | Record<string, never>;
  get_volume_paths: string[];
  get_all_available_volumes: string[];
  get_search_path: string | null;
}

export interface ConnectorErrorBody {
  type: string;
  message: string;
  [key: string]: unknown;
}

export type ConnectorReply<R = unknown> =
  | { version: typeof PROTOCOL_VERSION; ok: true; result: R }
  | { version: typeof PROTOCOL_VERSION; ok: false; error: ConnectorErrorBody };

/** What buildRequest takes per operation; the flags default to false, the dicts to null. */
export interface RequestArgs {
  connect_volume: { connection_properties: OsBrickProperties; multipath?: boolean };
  disconnect_volume: { connection_properties: OsBrickProperties; device_info?: OsBrickDeviceInfo | null; force?: boolean; ignore_errors?: boolean };
  get_volume_paths: { connection_properties: OsBrickProperties };
  get_all_available_volumes: { connection_properties?: OsBrickProperties | null };
  get_search_path: { connection_properties?: OsBrickProperties | null };
}

export const DOCS = 'docs/connector-protocol.md';
