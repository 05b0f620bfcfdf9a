import type { DataNetwork, FcInitiator, FcTargetPort, TargetVolume } from './model.js';
import type { Nvmet } from './nvmet.js';

/**
 * What creating a volume needs of the target's volume manager (TargetVolumes): the plumbing both
 * protocols share, so that each protocol's create lives in a file of its own.
 */
export interface VolumeWorkbench {
  readonly lab: string;
  readonly networks: DataNetwork[];
  readonly nvmet: Nvmet;
  /** The volumes made so far (read-only view) and the way to record a new one. */
  volumes(): TargetVolume[];
  exists(name: string): boolean;
  record(v: TargetVolume): void;
  /** Serialises changes: configfs and LUN/NSID picking are not safe to interleave. */
  serial<T>(fn: () => Promise<T>): Promise<T>;
  lioRequest<T>(op: string, args: unknown): Promise<T>;
  makeFile(name: string, sizeMiB: number): Promise<string>;
  attachLoop(file: string): Promise<string>;
  detachLoop(device: string): Promise<void>;
  pickNetworks(names: string[] | undefined): DataNetwork[];
  /** The target's FCoE ports on these networks, made (with their tcm_fc targets) at the first FC volume. */
  fcPorts(nets: DataNetwork[]): Promise<FcTargetPort[]>;
  /** The lab's compute ports (WWPNs), given ACLs before the target's ports log in. */
  readonly fcInitiators: FcInitiator[];
  checkNew(name: string): void;
}
