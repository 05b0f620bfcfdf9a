/**
 * brick-lab's layers, checked by `npm run check:layers` (part of `npm test`).
 *
 * Two programs share src/: the node agent (system <- volume <- osbrick <- inventory <-
 * connectors | targets <- agent) and the host CLI (lab <- scenarios <- conformance <- the
 * CLI). They meet only through agent/api, the agent's contract: host code may use
 * it and the pure lower layers (system, volume, osbrick), never the node's own code. Each folder
 * lists what it may import; anything else is an upward or sideways import and fails the check.
 */
const MAY_IMPORT = {
  system: [],
  volume: ['system'],
  osbrick: ['system', 'volume'],
  inventory: ['system', 'volume', 'osbrick'],
  connectors: ['system', 'volume', 'osbrick', 'inventory'],
  targets: ['system', 'volume', 'osbrick', 'inventory'],
  // The contract: values from the pure layers; the node's model types (type-only, see below).
  'agent/api': ['system', 'volume', 'osbrick'],
  agent: ['system', 'volume', 'osbrick', 'inventory', 'connectors', 'targets', 'agent/api'],
  lab: ['system', 'volume', 'osbrick', 'agent/api'],
  scenarios: ['system', 'volume', 'osbrick', 'agent/api', 'lab'],
  conformance: ['system', 'volume', 'osbrick', 'agent/api', 'lab', 'scenarios'],
  // The client verbs (paths, volumes, inventory, orphans, check): agents of a lab or at a URL.
  client: ['system', 'volume', 'osbrick', 'agent/api', 'lab'],
};
const LAYERS = Object.keys(MAY_IMPORT);
const NODE_MODEL = ['inventory', 'connectors', 'targets'];

/** A folder as a path pattern; `agent` is the agent without its api/ subfolder. */
const folder = (name) => (name === 'agent' ? '^src/agent/(?!api/)' : `^src/${name}/`);
const anyOf = (names) => `(${names.map(folder).join('|')})`;

const layerRules = LAYERS.map((layer) => {
  // agent/api's imports of the node model are judged by the next rule (type-only).
  const exempt = layer === 'agent/api' ? NODE_MODEL : [];
  const forbidden = LAYERS.filter((other) => other !== layer && !MAY_IMPORT[layer].includes(other) && !exempt.includes(other));
  return {
    name: `layer-${layer.replace('/', '-')}`,
    comment: `src/${layer}/ may import only ${MAY_IMPORT[layer].length ? MAY_IMPORT[layer].join(', ') : 'itself and Node'} (see .dependency-cruiser.cjs)`,
    severity: 'error',
    from: { path: folder(layer) },
    to: { path: anyOf(forbidden) },
  };
});
const apiModelRule = {
  name: 'layer-agent-api-model-types-only',
  comment: 'src/agent/api/ may name the node model (inventory, connectors, targets) in type-only imports',
  severity: 'error',
  from: { path: folder('agent/api') },
  to: { path: anyOf(NODE_MODEL), dependencyTypesNot: ['type-only'] },
};

module.exports = {
  forbidden: [
    ...layerRules,
    apiModelRule,
    {
      name: 'commands-on-the-contract',
      comment: 'the CLI sits on agent/api and the host layers, never on the node code (but `brick-lab agent`, which runs the compute agent on this host, starts it through its entry)',
      severity: 'error',
      from: { path: '^src/cli\\.ts$' },
      to: { path: anyOf(['inventory', 'connectors', 'targets', 'agent']), pathNot: '^src/agent/host-agent\\.ts$' },
    },
    {
      name: 'no-lower-to-top',
      comment: 'nothing in a layer imports the top-level files (cli, index)',
      severity: 'error',
      from: { path: '^src/[^/]+/' },
      to: { path: '^src/[^/]+\\.ts$' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycle between modules',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      comment: 'no import cycle between folders',
      severity: 'error',
      scope: 'folder',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
