import { AgentClient } from './client.js';
import type { CallOptions } from './compute-client.js';
import { paths, ROUTES } from './paths.js';
import type {
  AnaReply, AnaRequest, CleanupReply, DeleteVolumeReply, FcVolumeRequest, IscsiVolumeRequest, LeftoversReply, NetworkReply, NvmeVolumeRequest, RestartReply,
  Signature, SignatureReply, TargetVolume, UnmapReply, VolumesReply,
} from './types.js';

/** A target node's agent: volumes over iSCSI (LIO) and NVMe/TCP (nvmet), and the fault knobs. */
export class TargetClient extends AgentClient {
  createFcVolume(req: FcVolumeRequest, opts: CallOptions = {}): Promise<TargetVolume> {
    return this.http.request('POST', ROUTES.fcVolumes, req, opts.timeoutMs);
  }

  createIscsiVolume(req: IscsiVolumeRequest, opts: CallOptions = {}): Promise<TargetVolume> {
    return this.http.request('POST', ROUTES.iscsiVolumes, req, opts.timeoutMs);
  }

  createNvmeVolume(req: NvmeVolumeRequest, opts: CallOptions = {}): Promise<TargetVolume> {
    return this.http.request('POST', ROUTES.nvmeVolumes, req, opts.timeoutMs);
  }

  volumes(): Promise<VolumesReply> {
    return this.http.request('GET', ROUTES.volumes);
  }

  volume(name: string): Promise<TargetVolume> {
    return this.http.request('GET', paths.volume(name));
  }

  deleteVolume(name: string, opts: CallOptions = {}): Promise<DeleteVolumeReply> {
    return this.http.request('DELETE', paths.volume(name), undefined, opts.timeoutMs);
  }

  /** Take the volume from its hosts while they may use it: from one initiator's ACL, or from all. */
  unmap(name: string, initiator?: string): Promise<UnmapReply> {
    return this.http.request('POST', paths.unmap(name), initiator !== undefined ? { initiator } : {});
  }

  /** FC: map the volume's LUN to these host ports (Cinder's initialize_connection); the number of new mappings. */
  map(name: string, initiators: string[], opts: CallOptions = {}): Promise<{ volume: string; mapped: number }> {
    return this.http.request('POST', paths.map(name), { initiators }, opts.timeoutMs);
  }

  /** What the volume's first block says, read on the target. */
  signature(name: string): Promise<SignatureReply> {
    return this.http.request('GET', paths.signature(name));
  }

  writeSignature(name: string, signature: Signature): Promise<SignatureReply> {
    return this.http.request('PUT', paths.signature(name), signature);
  }

  /** One data network's interface down or up. */
  setNetwork(network: string, up: boolean): Promise<NetworkReply> {
    return this.http.request('POST', paths.network(network), { up });
  }

  setAna(req: AnaRequest): Promise<AnaReply> {
    return this.http.request('POST', ROUTES.ana, req);
  }

  /** Every LIO and nvmet object away and back from the saved configuration. */
  restart(opts: CallOptions = {}): Promise<RestartReply> {
    return this.http.request('POST', ROUTES.restart, {}, opts.timeoutMs);
  }

  /** Everything LIO and nvmet hold right now, read from the kernel. */
  leftovers(): Promise<LeftoversReply> {
    return this.http.request('GET', ROUTES.leftovers);
  }

  /** Force-clean: nvmet, LIO, loop devices, backing files. */
  cleanup(opts: CallOptions = {}): Promise<CleanupReply> {
    return this.http.request('POST', ROUTES.cleanup, {}, opts.timeoutMs);
  }
}
