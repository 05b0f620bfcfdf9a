import { fileURLToPath } from 'node:url';
import type { AgentOptions } from '../../src/agent/server.js';
import { TargetVolumes } from '../../src/targets/volumes.js';

/** dpkg's status file of the real guest image (test/fixtures/README.md). */
export const DPKG_STATUS = fileURLToPath(new URL('../fixtures/guest-6.1.0-56/dpkg-status', import.meta.url));

/**
 * The options of a compute and a target agent run in-process for route tests: no lab behind them,
 * and a target whose LIO helper does not exist (nothing here may need the LIO worker).
 */
export function unitAgentOptions(token: string, compute: Partial<AgentOptions> = {}): { compute: AgentOptions; target: AgentOptions } {
  return {
    compute: { lab: 'unit', node: 'compute-1', role: 'compute', token, dpkgStatusFile: DPKG_STATUS, compute: true, localDisks: true, ...compute },
    target: {
      lab: 'unit',
      node: 'target-1',
      role: 'target',
      token,
      dpkgStatusFile: DPKG_STATUS,
      targets: new TargetVolumes('lab', [{ name: 'path-a', address: '10.10.1.10' }], '/nonexistent/lio_helper.py'),
    },
  };
}
