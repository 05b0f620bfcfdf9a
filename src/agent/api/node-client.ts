import { AgentClient } from './client.js';
import { ComputeClient } from './compute-client.js';
import { TargetClient } from './target-client.js';

/**
 * A client of one node whatever its role: health and exec, with its role's routes under
 * `compute` and `target` (one connection state: the last answer's agent time is shared).
 */
export class NodeClient extends AgentClient {
  readonly compute = new ComputeClient(this.http);
  readonly target = new TargetClient(this.http);
}
