import type { NodeClient } from '../agent/api/node-client.js';
import type { GuestImage } from './image/build.js';
import type { LabRecord, NodeRecord } from './state.js';
import type { ProviderName } from './topology.js';

/** What `up` hands a provider: the lab's record (written as things are made), the image, the token. */
export interface UpContext {
  rec: LabRecord;
  /** The lab-wide guest's image (the acceleration probe's). */
  image: GuestImage;
  /** Every guest's image the lab's nodes run, by guest. */
  images: ReadonlyMap<string, GuestImage>;
  /** The lab's agent token (what every node's agent asks for). */
  token: string;
  signal?: AbortSignal;
}

/** A provider ready to start the nodes it prepared for (holds what it chose for this lab). */
export interface PreparedNodes {
  /**
   * Start a node without waiting for its agent (QEMU daemonizes). A provider whose start is its
   * wait (a container started through testcontainers) starts it in `ready` instead.
   */
  start(node: NodeRecord): Promise<void>;
  /** Until the node's agent reports ready; fails at once when the node dies. */
  ready(node: NodeRecord): Promise<void>;
}

/** What a lab (or every lab) still holds on this host; each provider fills in its own kinds. */
export interface Leftovers {
  qemu: number[];
  taps: string[];
  netns: string[];
  containers: string[];
  networks: string[];
  rules: string[];
}

/** What `down` hands a provider: the lab, its record when there is one, and its agents. */
export interface RemoveContext {
  name: string;
  rec: LabRecord | null;
  client(node: string): Promise<NodeClient>;
}

/** How a node runs: a QEMU VM on the host, or in a container. `up`, `down`, `status` and `leftovers` go through it. */
export interface Provider {
  readonly name: ProviderName;
  /**
   * Everything its nodes need before any starts (networks, images, privileges, the files the share
   * needs for them), written into ctx.rec; called only when the lab has nodes of this provider,
   * in the order of `PROVIDER_ORDER`, before the lab share is written.
   */
  prepare(ctx: UpContext, nodes: NodeRecord[]): Promise<PreparedNodes>;
  /** `up --dry-run`: what the node would run, as a shell would take it. */
  dryRun(rec: LabRecord, node: NodeRecord, image: GuestImage): string[];
  /** Whether the node's process (the VM, or its container's init) still runs. */
  alive(node: NodeRecord): boolean;
  /** Nodes of the lab found running without the record (a crashed `up`); absent where the record's pids are all there is. */
  running?(name: string): Promise<boolean>;
  /** Whether the lab left something of this provider behind (found without the record). */
  hasState(name: string): Promise<boolean>;
  /** Remove what the lab made through this provider, with or without its record; says what it removed. */
  remove(ctx: RemoveContext): Promise<string[]>;
  /** What a lab (or every lab) still holds of this provider's kinds. */
  leftovers(name?: string): Promise<Partial<Leftovers>>;
}

/** The image a node runs: its guest's (a record written before guests: the lab's one image). */
export function imageOf(ctx: Pick<UpContext, 'image' | 'images'>, node: Pick<NodeRecord, 'guest'>): GuestImage {
  return (node.guest !== undefined ? ctx.images.get(node.guest) : undefined) ?? ctx.image;
}
