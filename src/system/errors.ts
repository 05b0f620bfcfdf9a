/**
 * Every failure a user or a client can see carries a stable code, a message that says what was
 * wrong, and a hint that says what to do about it.
 *
 * The codes are catalogued here, each with the HTTP status the agent answers it with and what it
 * means. Domain code throws a coded error and never picks a status: the catalogue does, in one
 * place, so that the agent's contract (agent/api) and its OpenAPI document can list them.
 */
export interface ErrorEntry {
  /** The agent's HTTP status for it; 500 for host-side errors that never cross the API. */
  status: number;
  meaning: string;
}

const bad = (meaning: string): ErrorEntry => ({ status: 400, meaning });
const missing = (meaning: string): ErrorEntry => ({ status: 404, meaning });
const conflict = (meaning: string): ErrorEntry => ({ status: 409, meaning });
const upstream = (meaning: string): ErrorEntry => ({ status: 502, meaning });
const host = (meaning: string): ErrorEntry => ({ status: 500, meaning });

export const ERROR_CATALOGUE = {
  // Requests the agent refuses before doing anything (400).
  BAD_REQUEST: bad('a field of the request is missing or malformed; the message names it'),
  BAD_IQN: bad('not an iSCSI qualified name'),
  BAD_NQN: bad('not an NVMe qualified name'),
  BAD_WWPN: bad('not a Fibre Channel port name (16 hex digits)'),
  BAD_PORTAL: bad('not a portal, address or port'),
  BAD_LUN: bad('not a LUN number'),
  UNSUPPORTED_TRANSPORT: bad('a transport the lab does not have (only NVMe/TCP)'),
  WRONG_VOLUME_TYPE: bad('connection_info of another protocol than the connector it was sent to'),
  VOLUME_EXISTS: bad('a volume of that name already exists on the target'),
  NSID_IN_USE: bad('the namespace id asked for is taken in that subsystem'),
  LUN_IN_USE: bad('the LUN asked for is taken in that target'),
  UNKNOWN_TARGET: bad('no such iSCSI target on the node'),
  NO_BACKING_FILE: bad('a ramdisk volume has no file the target can read or write'),
  BAD_CONNECTOR: bad('an installed connector file is empty or unusable'),
  BAD_CONNECTOR_NAME: bad('not a connector name'),
  CONNECTOR_BAD_REQUEST: bad('not a request of the external connector protocol'),
  LIO_REFUSED: bad('rtslib refused the LIO change asked for'),
  UNAUTHORIZED: { status: 401, meaning: 'missing or wrong lab token' },
  AGENT_READ_ONLY: { status: 403, meaning: 'a host agent started without --allow-attach does not attach or detach' },
  BODY_TOO_LARGE: { status: 413, meaning: 'the request body is larger than the agent takes' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'the request body is not application/json' },

  // Things that are not there (404).
  VOLUME_UNKNOWN: missing('no volume of that name on the target'),
  DISK_UNKNOWN: missing('no scsi_debug host of that number on the node'),
  DEVICE_MISSING: missing('the device path does not exist on the node'),
  CONNECTOR_NOT_INSTALLED: missing('no installed connector of that name on the node'),
  ISCSI_NO_NODE: missing('no iSCSI node record for that target and portal'),
  ROUTE_UNKNOWN: missing('no route of that method and path on this agent (GET /openapi.json lists them)'),
  BASELINE_UNKNOWN: missing('no baseline of that id is kept on the node (the agent restarted, or it was one of the oldest): send the snapshot itself'),

  // The node's state does not allow it now (409).
  FLUSH_FAILED: conflict('a block device could not be flushed; disconnect with force to drop its data'),
  DEVICE_STUCK: conflict('a device stayed in sysfs after it was deleted'),
  MULTIPATHD_NOT_RUNNING: conflict('multipath was asked for but multipathd does not run'),
  MULTIPATH_FLUSH_FAILED: conflict('a multipath map stayed in use'),
  DEVICE_HELD: conflict('a device of the volume carries a holder (a dm map, an md array, a partition map) the connector did not make'),
  ISCSI_DB_LOCKED: conflict("open-iscsi's record lock stayed taken"),
  SCSI_DEBUG_MISSING: conflict('scsi_debug is not loaded (local disks are on compute nodes only)'),
  NVMET_MISSING: conflict('nvmet is not loaded or configfs is not mounted'),
  FCOE_MISSING: conflict('the node cannot make its FCoE ports (no fcoe module, no such interface, a port that does not come online)'),
  LIMIT_REACHED: conflict('the node holds as many of these as it can afford (memory, devices): remove some first'),
  NODE_NOT_REBOOTABLE: conflict('the node has no kernel of its own to reboot (a target on the host\'s kernel) or no reboot script (an in-process agent)'),
  KERNEL_LOG_UNREADABLE: host('the agent could not open the kernel\'s log (/dev/kmsg): not root, or a container without it'),
  AGENT_NOT_RESTARTABLE: conflict('this agent was not started by a node\'s agent loop (an in-process agent): nothing would start it again'),

  // What the node asked of others failed (502) or took too long (504).
  CONNECT_FAILED: upstream('no path to the volume worked'),
  ISCSI_LOGIN_FAILED: upstream('an iSCSI login failed'),
  CONNECTOR_FAILED: upstream('an external connector reported a failure'),
  CONNECTOR_BAD_REPLY: upstream("an external connector's reply does not match the protocol"),
  CONNECTOR_BAD_JSON: upstream('an external connector wrote no JSON reply'),
  CONNECTOR_NOT_FOUND: upstream('the connector program does not exist'),
  CONNECTOR_NOT_EXECUTABLE: upstream('the connector program cannot be run'),
  CONNECTOR_TIMEOUT: upstream('an external connector did not answer in time'),
  CONNECTOR_CRASHED: upstream('an external connector was killed by a signal or ended without a reply'),
  CONNECTOR_MODULE_FAILED: upstream('a connector module did not load or has not the Connector methods'),
  DEVICE_TIMEOUT: { status: 504, meaning: 'a device, session or map did not appear in time' },
  MULTIPATHD_SILENT: { status: 503, meaning: 'multipathd runs but did not answer, asked three times: its view of the host cannot be read, so the host is not judged' },

  // Failures inside the node (500).
  INTERNAL: host('an error the agent did not expect'),
  LIO_INTERNAL: host('rtslib failed inside the LIO worker'),
  LOOP_CLR_FD: host('detaching a loop device failed'),
  LOOP_CTL_GET_FREE: host('no free loop device'),
  LOOP_SET_FD: host('attaching a loop device failed'),
  ISCSIADM_FAILED: host('iscsiadm failed'),
  ISCSI_NODE_NOT_MADE: host('iscsiadm made no node record where open-iscsi keeps them'),
  ISCSI_NO_HOST: host('an iSCSI session has no SCSI host'),
  ISCSI_DISCOVERY_RECORD: host('a node record of a discovery layout this connector does not write'),
  BAD_NODE_SETTING: host('a node record setting that cannot be written'),
  CONNECTOR_NOT_INITIALISED: host('an external connector was used before init()'),
  SCSI_DEBUG_FAILED: host('scsi_debug did not add a disk'),
  EXEC_EMPTY: host('a command with no program'),
  EXEC_FAILED: host('a command exited non-zero'),
  EXEC_NOT_FOUND: host('a program is not installed'),
  EXEC_TIMEOUT: host('a command ran out of time'),
  WORKER_DIED: host('a long-lived helper process ended'),
  WORKER_TIMEOUT: host('a long-lived helper process did not answer in time'),
  WORKER_ERROR: host('a long-lived helper process answered an error without text'),
  LOCK_TIMEOUT: host('a lock file stayed taken'),

  // The host side: CLI, lab, scenarios, conformance kit (never sent by an agent).
  USAGE: host('the command line is wrong'),
  AGENT_NOT_BUILT: host('dist/agent is missing: run npm run build'),
  NOT_A_TEST_HOST: host('brick-lab agent runs only on a host marked as a test host'),
  AGENT_TOKEN_FILE: host("the host agent's token file cannot be made, read or is open to others"),
  AGENT_TLS: host("the host agent's TLS certificate or key cannot be read"),
  AGENT_LISTEN: host('not an address and port to listen on, or it is taken'),
  AGENT_UNREACHABLE: host("a node's agent did not answer"),
  NODE_COMMAND_FAILED: host('a command run in a node exited non-zero'),
  BAD_SCENARIO_SETS: host('lab/scenarios.yaml is malformed'),
  UNKNOWN_SCENARIO: host('no scenario or set of that name'),
  UNKNOWN_CHECK: host('no conformance check of that name'),
  TOPOLOGY_INVALID: bad('the topology file is malformed'),
  TOPOLOGY_MISSING: host('the topology file does not exist'),
  TOPOLOGY_LACKS: host('the topology lacks what a scenario needs'),
  CONNECTOR_BUILD_FAILED: host('bundling a TypeScript connector failed'),
  TOOL_MISSING: host('a host tool is missing'),
  HOST_TOOLS_MISSING: host('host tools the lab needs are missing'),
  NOT_ROOT: host('the lab needs root'),
  NO_TUN: host('/dev/net/tun is missing'),
  LAB_EXISTS: host('a lab of that name is already up'),
  LAB_GUEST_MISMATCH: host('a running lab runs another guest than --guest asks for'),
  LAB_INTERRUPTED: host('up was interrupted; what it made was removed'),
  LAB_NAME_INVALID: host('not a lab name'),
  LAB_NOT_UP: host('the lab is not up'),
  LAB_BUSY: host('another run is using the lab'),
  LAB_NOT_RESTORED: host('a lab left by an interrupted run could not be put back'),
  LAB_RECORD_CORRUPT: host("the lab's state file cannot be read"),
  LOG_MISSING: host('the node has no console log yet'),
  NODE_BOOT_FAILED: host('a node failed to boot'),
  NODE_BOOT_TIMEOUT: host('a node was not ready in time'),
  NODE_REBOOT_FAILED: host('a node asked to reboot kept running the boot it was asked to leave'),
  NODE_DIED: host("a node's VM ended while it booted"),
  NODE_UNKNOWN: host('the lab has no node of that name'),
  QEMU_START_FAILED: host('QEMU did not start'),
  IMAGE_CLEANUP_BLOCKED: host('an interrupted image build left mounts that cannot be removed'),
  IMAGE_KERNEL_MISSING: host('the guest kernel package has no kernel image'),
  IMAGE_MODULE_COMPRESSED: host('a kernel module the initramfs needs is compressed'),
  RECIPE_INVALID: host("a guest's recipe (images/guests/NAME.json) is malformed"),
  RECIPE_MISSING: host("a guest's recipe (images/guests/NAME.json) is missing"),
  UNKNOWN_GUEST: host('no guest of that name (no recipe in images/guests)'),
  DOCKER_UNAVAILABLE: host('no Docker Engine answers'),
  DOCKER_HOST_KERNEL_UNAVAILABLE: host("the host kernel lacks LIO or nvmet for targets on it"),
  DOCKER_IMAGE_BUILD_FAILED: host('the node image tarball could not be built'),
  DOCKER_IMAGE_IMPORT_FAILED: host('docker import of the node image failed'),
  DOCKER_NETWORK_CONFLICT: host("the engine's address pools overlap or are exhausted"),
  DOCKER_NETWORK_FAILED: host('a Docker network could not be made'),
  DOCKER_NETWORK_INVALID: host("a Docker network's subnet does not fit the lab"),
  DOCKER_NODE_START_FAILED: host('a node container did not start'),
} as const satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}

/** The HTTP status of a code; codes from elsewhere (a helper process, a remote agent) are 500 unless known. */
export function statusOf(code: string): number {
  return isErrorCode(code) ? ERROR_CATALOGUE[code].status : 500;
}

export interface BrickErrorOptions {
  hint?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class BrickError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  /** HTTP status used when the error crosses the agent's API: the catalogue's, or a remote answer's. */
  readonly statusCode: number;

  constructor(code: ErrorCode, message: string, opts: BrickErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'BrickError';
    this.code = code;
    this.hint = opts.hint;
    this.details = opts.details;
    this.statusCode = statusOf(code);
  }

  /** One block of text for a terminal: message, then what to do. */
  describe(): string {
    return this.hint ? `${this.code}: ${this.message}\n  hint: ${this.hint}` : `${this.code}: ${this.message}`;
  }
}

/**
 * An error whose code came from elsewhere: an agent's answer (with the status it answered), or a
 * helper process. Its code need not be catalogued; its status is the one given, else the
 * catalogue's, else 500.
 */
export class RemoteError extends BrickError {
  override readonly code: string;
  override readonly statusCode: number;

  constructor(code: string, message: string, opts: BrickErrorOptions & { status?: number } = {}) {
    super('INTERNAL', message, opts);
    this.code = code;
    this.statusCode = opts.status ?? statusOf(code);
  }
}

export function isBrickError(e: unknown): e is BrickError {
  return e instanceof BrickError;
}
