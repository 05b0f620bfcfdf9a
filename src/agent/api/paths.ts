/**
 * Every route of the node agent, written once: the route patterns fastify registers, and the
 * builders clients use to fill their parameters in.
 */
import type { Protocol } from '../../volume/protocol.js';

export const ROUTES = {
  health: '/v1/health',
  exec: '/v1/exec',
  restartAgent: '/v1/agent/restart',
  agentMemory: '/v1/agent/memory',
  kernelLog: '/v1/node/kernel-log',
  outage: '/v1/node/outage',
  reboot: '/v1/node/reboot',
  openapi: '/openapi.json',

  connectors: '/v1/connectors',
  connectorProperties: '/v1/connectors/properties',
  searchPath: '/v1/connectors/:protocol/search-path',
  volumePaths: '/v1/connectors/:protocol/volume-paths',
  volumePathsBatch: '/v1/connectors/:protocol/volume-paths-batch',
  availableVolumes: '/v1/connectors/:protocol/available-volumes',
  connect: '/v1/connectors/:protocol/connect',
  disconnect: '/v1/connectors/:protocol/disconnect',
  connectorPrograms: '/v1/connectors/programs',
  connectorProgram: '/v1/connectors/programs/:name',

  inventory: '/v1/inventory',
  inventoryDiff: '/v1/inventory/diff',
  orphans: '/v1/inventory/orphans',
  hostCheck: '/v1/inventory/host-check',
  baselines: '/v1/inventory/baselines',

  iscsiVolumes: '/v1/targets/iscsi/volumes',
  nvmeVolumes: '/v1/targets/nvmet/volumes',
  fcVolumes: '/v1/targets/fc/volumes',
  volumes: '/v1/targets/volumes',
  volume: '/v1/targets/volumes/:name',
  unmap: '/v1/targets/volumes/:name/unmap',
  map: '/v1/targets/volumes/:name/map',
  signature: '/v1/targets/volumes/:name/signature',
  network: '/v1/targets/networks/:network',
  ana: '/v1/targets/nvmet/ana',
  restart: '/v1/targets/restart',
  leftovers: '/v1/targets/leftovers',
  cleanup: '/v1/targets/cleanup',

  localDisks: '/v1/local-disks',
  localDisk: '/v1/local-disks/:host',
} as const;

export type RouteName = keyof typeof ROUTES;

const seg = (v: string | number): string => encodeURIComponent(String(v));

/** `?connector=NAME` for an installed connector; nothing for brick-lab's own. */
function connectorQuery(connector: string | undefined): string {
  return connector ? `?connector=${seg(connector)}` : '';
}

/** The URLs of parameterised routes, with their parameters encoded. */
export const paths = {
  kernelLog: (since?: number): string => (since === undefined ? ROUTES.kernelLog : `${ROUTES.kernelLog}?since=${since}`),
  health: (waitReadyMs = 0): string => (waitReadyMs > 0 ? `${ROUTES.health}?waitReadyMs=${waitReadyMs}` : ROUTES.health),
  searchPath: (p: Protocol, connector?: string): string => `/v1/connectors/${seg(p)}/search-path${connectorQuery(connector)}`,
  volumePaths: (p: Protocol, connector?: string): string => `/v1/connectors/${seg(p)}/volume-paths${connectorQuery(connector)}`,
  volumePathsBatch: (p: Protocol): string => `/v1/connectors/${seg(p)}/volume-paths-batch`,
  availableVolumes: (p: Protocol, connector?: string): string => `/v1/connectors/${seg(p)}/available-volumes${connectorQuery(connector)}`,
  connect: (p: Protocol, connector?: string): string => `/v1/connectors/${seg(p)}/connect${connectorQuery(connector)}`,
  disconnect: (p: Protocol, connector?: string): string => `/v1/connectors/${seg(p)}/disconnect${connectorQuery(connector)}`,
  connectorProgram: (name: string): string => `${ROUTES.connectorPrograms}/${seg(name)}`,
  inventory: (record = false): string => (record ? `${ROUTES.inventory}?record=1` : ROUTES.inventory),
  volume: (name: string): string => `${ROUTES.volumes}/${seg(name)}`,
  unmap: (name: string): string => `${ROUTES.volumes}/${seg(name)}/unmap`,
  map: (name: string): string => `${ROUTES.volumes}/${seg(name)}/map`,
  signature: (name: string): string => `${ROUTES.volumes}/${seg(name)}/signature`,
  network: (network: string): string => `/v1/targets/networks/${seg(network)}`,
  localDisk: (host: number): string => `${ROUTES.localDisks}/${seg(host)}`,
} as const;
