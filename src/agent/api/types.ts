/**
 * The request and reply bodies of every agent route: the wire contract clients and handlers
 * share. Domain types are reused where the wire carries them as they are.
 */
import type { InstalledConnector } from '../../connectors/registry.js';
import type { AvailableVolume, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from '../../connectors/types.js';
import type { SnapshotDiff } from '../../inventory/diff.js';
import type { HostWideView } from '../../inventory/hostwide.js';
import type { Orphan } from '../../inventory/orphans.js';
import type { OracleAnswer } from '../../inventory/oracle.js';
import type { HostSnapshot } from '../../inventory/model.js';
import type { HostFsRecording } from '../../system/hostfs-record.js';
import type { ExecResult } from '../../system/exec.js';
import type { LocalDisk } from '../../targets/scsi-debug.js';
import type { NvmetPort, NvmetSubsystem } from '../../targets/nvmet.js';
import type { AnaState } from '../../volume/protocol.js';
import type { Signature } from '../../volume/signature.js';
import type { FcVolumeRequest, IscsiVolumeRequest, NvmeVolumeRequest, TargetVolume } from '../../targets/model.js';
import type { Protocol } from '../../volume/protocol.js';

export type { AvailableVolume, DeviceInfo, DisconnectOptions, VolumePaths, SnapshotDiff, HostWideView, Orphan, HostSnapshot, ExecResult, LocalDisk, Signature, TargetVolume, FcVolumeRequest, IscsiVolumeRequest, NvmeVolumeRequest };

/** Every error answer: a catalogued code, what was wrong, and what to do. */
export interface ErrorReply {
  code: string;
  message: string;
  hint?: string;
}

// --- health and exec ---------------------------------------------------------------------------

export interface HealthReport {
  lab: string;
  node: string;
  role: 'target' | 'compute';
  state: 'booting' | 'ready';
  kernel: string;
  uptimeSeconds: number;
  /** This boot's identity (the kernel's boot_id): another one after a reboot. */
  bootId: string;
  timeline: Array<{ step: string; uptimeSeconds: number }>;
  tools: Record<string, string | null>;
  /** The agent's build, its Node.js, and its process (a restart gives another pid). */
  agent: { version: string; node: string; pid: number };
}

/** process.memoryUsage(), in bytes. */
export interface ProcessMemory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/** POST /v1/agent/memory: the agent's memory, after a full garbage collection when `collect` (the default). */
export interface AgentMemoryRequest {
  collect?: boolean;
}

/** process.memoryUsage() in bytes, and each V8 heap space's size and use (new space, old space, code...). */
export interface AgentMemoryReply {
  collected: boolean;
  memory: ProcessMemory;
  heapSpaces: Array<{ name: string; sizeBytes: number; usedBytes: number }>;
}

/** GET /v1/node/kernel-log: the next record's sequence number, and with `since` the records from it on (/dev/kmsg). */
export type { KernelLog as KernelLogReply, KernelLogRecord } from '../../system/kmsg.js';

/** POST /v1/agent/restart: the agent answers, then ends and its node's agent loop starts it again. */
export interface RestartAgentReply {
  pid: number;
  restarting: true;
}

/** POST /v1/node/reboot: a clean reboot, or with hard a reset at once (nothing synced or logged out). */
export interface RebootRequest {
  hard?: boolean;
}

/** The boot the node is leaving (the next one answers health with another bootId). */
export interface RebootReply {
  bootId: string;
  hard: boolean;
}

/** The longest outage a node takes (seconds): an hour outlasts any recovery or loss timeout worth testing. */
export const OUTAGE_MAX_SECONDS = 3600;

/** POST /v1/node/outage: which data networks of the node to take down (default: all), and for how long. */
export interface OutageRequest {
  seconds: number;
  networks?: string[];
}

/** The node's data networks that are down, each with when the agent brings it back up. */
export interface OutageReply {
  down: Array<{ network: string; until: string }>;
}

export interface ExecRequest {
  argv: string[];
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
}

export type ExecReply = ExecResult;

// --- connectors --------------------------------------------------------------------------------

/**
 * Connection properties as os-brick takes them: Cinder's connection_info
 * `{driver_volume_type, data}`, or its data alone. The connector checks every field.
 */
export type ConnectionPayload = Record<string, unknown>;

export interface ConnectorsReply {
  connectors: Array<{ protocol: Protocol; searchPath: string | null }>;
}

export type { HostConnectorProperties as ConnectorPropertiesReply } from '../../connectors/host-properties.js';

export interface SearchPathReply {
  searchPath: string | null;
}

export type VolumePathsReply = VolumePaths;

export interface VolumePathsBatchRequest {
  volumes: ConnectionPayload[];
}

export interface VolumePathsBatchReply {
  results: VolumePaths[];
}

export interface AvailableVolumesReply {
  volumes: AvailableVolume[];
}

export interface ConnectRequest {
  properties: ConnectionPayload;
  multipath?: boolean;
}

export type ConnectReply = DeviceInfo;

export interface DisconnectRequest {
  properties: ConnectionPayload;
  deviceInfo?: DeviceInfo | null;
  force?: boolean;
  ignoreErrors?: boolean;
}

/** The connector's DetachResult: removed, errors, and `left` (holders left in place) when there are any. */
export type DisconnectReply = DetachResult;

/** Choosing an installed connector (brick-lab validate) instead of brick-lab's own. */
export interface ConnectorChoice {
  connector?: string | undefined;
}

/** The install route's body and answer are the registry's own types. */
export type { InstallRequest as InstallConnectorRequest, InstalledConnector as InstalledConnectorReply } from '../../connectors/registry.js';

export interface InstalledConnectorsReply {
  connectors: InstalledConnector[];
}

// --- inventory ---------------------------------------------------------------------------------

/** GET /v1/inventory?record=1: the snapshot and every read behind it. */
export interface RecordedInventoryReply {
  snapshot: HostSnapshot;
  recording: HostFsRecording;
}

export interface DiffRequest {
  before: HostSnapshot;
}

export type DiffReply = SnapshotDiff;

export interface OrphansRequest {
  protocol: Protocol;
  properties: ConnectionPayload;
  /** The SCSI WWID read at attach, when known. */
  wwid?: string;
  /** Volumes that stay attached and share the target, portal or map. */
  stillAttached?: Array<{ protocol: Protocol; properties: ConnectionPayload }>;
  /** The kernel names of the volume's devices at attach (a connect result's `devices`). */
  devices?: string[];
  /** A full snapshot taken before the detach: the reply then carries the host-wide view. */
  baseline?: HostSnapshot;
  /** Instead of `baseline`: the id of one this agent keeps (POST /v1/inventory/baselines). */
  baselineId?: string;
  /** Other volumes detached since the baseline: what they had may have gone too. */
  detachedSince?: Array<{ protocol: Protocol; properties: ConnectionPayload; wwid?: string; devices?: string[] }>;
}

/** The oracle's whole answer (inventory/oracle.ts), as the orphans route sends it. */
export type OrphansReply = OracleAnswer;

/** The baseline as a snapshot sent back, or as the id of one the agent keeps: one of the two. */
export interface HostCheckRequest {
  baseline?: HostSnapshot;
  baselineId?: string;
  stillAttached?: Array<{ protocol: Protocol; properties: ConnectionPayload }>;
}

/** A snapshot the agent took and keeps, to be named as a baseline by its id. */
export interface BaselineReply {
  id: string;
  snapshot: HostSnapshot;
}

export interface HostCheckReply extends HostWideView {
  clean: boolean;
}

// --- targets -----------------------------------------------------------------------------------

export interface VolumesReply {
  volumes: TargetVolume[];
}

export interface DeleteVolumeReply {
  deleted: string;
}

export interface UnmapRequest {
  initiator?: string;
}

export interface UnmapReply {
  volume: string;
  removed: number;
}

export interface SignatureReply {
  volume: string;
  signature: Signature | null;
}

export type SignatureRequest = Signature;

export interface NetworkRequest {
  up: boolean;
}

export interface NetworkReply {
  network: string;
  up: boolean;
}

export interface AnaRequest {
  network: string;
  group: number;
  state: AnaState;
}

export type AnaReply = AnaRequest;

export interface RestartReply {
  lioErrors: unknown[];
  nvmetSubsystems: number;
}

/** LIO's inventory as the rtslib worker reports it; open-ended beyond these keys. */
export interface LioInventory {
  targets: Array<{ iqn: string; [k: string]: unknown }>;
  backstores: Array<{ name: string; [k: string]: unknown }>;
  /** tcm_fc targets (the FCoE ports), their LUNs and ACLs; the ports and ACLs are the fabric's, the LUNs the volumes'. */
  fcPorts?: Array<{ wwpn: string; luns: Array<{ lun: number; storageObject: string }>; acls: Array<{ initiator: string; mappedLuns: number[] }> }>;
  [k: string]: unknown;
}

export interface LeftoversReply {
  lio: LioInventory;
  nvmet: { subsystems: NvmetSubsystem[]; ports: NvmetPort[]; hosts: string[] };
  loopDevices: string[];
  files: string[];
}

export interface CleanupReply {
  removed: string[];
}

// --- local disks -------------------------------------------------------------------------------

export interface LocalDisksReply {
  disks: LocalDisk[];
}

export interface RemoveLocalDiskReply {
  removed: string[];
}
