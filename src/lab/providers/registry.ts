import type { Provider } from '../provider.js';
import type { NodeRecord } from '../state.js';
import type { ProviderName } from '../topology.js';
import { dockerProvider } from './docker/provider.js';
import { qemuProvider } from './qemu/provider.js';

/**
 * The order providers prepare and remove in: docker first, since in a lab with containers the
 * data networks are Docker's bridges, which QEMU nodes' taps then join; and its host-kernel
 * targets must be cleaned through their agents before anything else goes.
 */
export const PROVIDER_ORDER: readonly Provider[] = [dockerProvider, qemuProvider];

const BY_NAME: Record<ProviderName, Provider> = { docker: dockerProvider, qemu: qemuProvider };

/** A node's provider; records written before the docker provider have none: qemu. */
export function providerOf(node: Pick<NodeRecord, 'provider'>): Provider {
  return BY_NAME[node.provider ?? 'qemu'];
}

/** The providers a lab's nodes use, in PROVIDER_ORDER, each with its nodes. */
export function providersOf(nodes: readonly NodeRecord[]): Array<{ provider: Provider; nodes: NodeRecord[] }> {
  return PROVIDER_ORDER.map((provider) => ({ provider, nodes: nodes.filter((n) => providerOf(n) === provider) })).filter((g) => g.nodes.length > 0);
}
