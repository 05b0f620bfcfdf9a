/**
 * brick-lab as a library: the Connector interface a connector of one's own implements, the
 * properties and their os-brick codec, the typed clients of a node agent, and the types of a
 * topology and of a report. The built-in connectors are `brick-lab/connectors`.
 */
export type { AvailableVolume, Connector, DetachResult, DeviceInfo, DisconnectOptions, VolumePaths } from './connectors/types.js';
export type { ChapCredentials, ConnectionProperties, IscsiProperties, IscsiTargetPath, LocalProperties, NvmeProperties } from './volume/properties.js';
export { PROTOCOLS, type Protocol } from './volume/protocol.js';
export type { VolumeIdentity } from './volume/identity.js';
export { normalise, osBrickData, toConnectionInfo, type ConnectionInfo } from './osbrick/index.js';
export { BrickError, ERROR_CATALOGUE, type ErrorCode } from './system/errors.js';
export type { NetworkSpec, NodeRole, NodeSpec, ProviderName, Topology } from './lab/topology.js';
export type { ScenarioResult, SuiteReport } from './scenarios/runner.js';
export { AgentClient } from './agent/api/client.js';
export { ComputeClient } from './agent/api/compute-client.js';
export { TargetClient } from './agent/api/target-client.js';
export { NodeClient } from './agent/api/node-client.js';
export { ROUTES } from './agent/api/paths.js';
export type * from './agent/api/types.js';
