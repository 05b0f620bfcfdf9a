/**
 * A connector as a TypeScript module, for `brick-lab validate --connector examples/ts-module/connector.ts`.
 * brick-lab bundles the module (esbuild) into one CommonJS file, installs it in each compute node
 * and calls `createConnector(protocol)` there; the object returned must have the Connector
 * interface (exported by the package as `brick-lab/connectors`).
 *
 * This one wraps brick-lab's own connectors and counts the calls it passes on: a starting point
 * for a connector of your own that reuses parts of brick-lab's (property parsing, the inventory).
 */
import { builtinConnector, type Connector } from 'brick-lab/connectors';
import type { Protocol } from 'brick-lab';

export function createConnector(protocol: Protocol): Connector {
  const inner = builtinConnector(protocol);
  const calls = new Map<string, number>();
  const count = (what: string): void => {
    calls.set(what, (calls.get(what) ?? 0) + 1);
    process.stderr.write(`ts-module connector: ${what} (${calls.get(what)})\n`);
  };
  return {
    protocol: inner.protocol,
    normalise: (payload) => inner.normalise(payload),
    getSearchPath: () => inner.getSearchPath(),
    async connectVolume(props, opts) {
      count('connect_volume');
      return inner.connectVolume(props, opts);
    },
    async disconnectVolume(props, device, opts) {
      count('disconnect_volume');
      return inner.disconnectVolume(props, device, opts);
    },
    async getVolumePaths(props) {
      count('get_volume_paths');
      return inner.getVolumePaths(props);
    },
    async getAllAvailableVolumes(props) {
      count('get_all_available_volumes');
      return inner.getAllAvailableVolumes(props);
    },
  };
}
