// The action's inputs (action.yml passes each as an INPUT_* environment variable, never into a
// shell line) turned into the brick-lab command line it runs: pure, so that the unit tests check
// it and the action's run step (run.mjs) and the e2e test use the one function.

const COMMANDS = ['run', 'validate'];
/** src/volume/protocol.ts's PROTOCOLS (test/unit/action.test.ts holds them equal). */
export const PROTOCOLS = ['iscsi', 'nvmeof', 'fc', 'local'];

export class InputError extends Error {}

/** "a b,c" -> ["a", "b", "c"]: the list inputs take spaces, commas or new lines. */
const words = (v) => (v ?? '').split(/[\s,]+/).filter(Boolean);

function flag(name, value) {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  throw new InputError(`input ${name}: "${value}" is not true or false`);
}

/**
 * { argv, results } for an environment of INPUT_COMMAND, INPUT_CONNECTOR, INPUT_SCENARIOS,
 * INPUT_PROTOCOLS, INPUT_MULTIPATH, INPUT_TOPOLOGY, INPUT_RESULTS, INPUT_JOBS; an InputError that
 * names the input and what is wrong with it otherwise.
 */
export function actionArgv(env) {
  const command = (env.INPUT_COMMAND ?? '').trim() || 'run';
  if (!COMMANDS.includes(command)) throw new InputError(`input command: "${command}" is not one of ${COMMANDS.join(', ')}`);
  const results = (env.INPUT_RESULTS ?? '').trim() || 'brick-lab-results';
  const argv = [command, '--results', results];
  const topology = (env.INPUT_TOPOLOGY ?? '').trim();
  if (topology) argv.push('--topology', topology);
  const jobs = (env.INPUT_JOBS ?? '').trim();
  if (jobs) {
    // The CLI's own bound (--jobs, src/cli.ts).
    if (!/^[1-9][0-9]?$/.test(jobs) || Number(jobs) > 64) throw new InputError(`input jobs: "${jobs}" is not a whole number from 1 to 64`);
    argv.push('--jobs', jobs);
  }
  const scenarios = words(env.INPUT_SCENARIOS);
  const protocols = words(env.INPUT_PROTOCOLS);
  const multipath = flag('multipath', env.INPUT_MULTIPATH);
  const connector = (env.INPUT_CONNECTOR ?? '').trim();
  for (const p of protocols) if (!PROTOCOLS.includes(p)) throw new InputError(`input protocols: "${p}" is not one of ${PROTOCOLS.join(', ')}`);
  if (command === 'run') {
    if (connector) throw new InputError('input connector: only the validate command takes a connector (run runs brick-lab\'s scenarios with its own)');
    if (protocols.length > 0 || multipath) throw new InputError('inputs protocols and multipath: only the validate command takes them (pick scenarios for run)');
    for (const s of scenarios) argv.push('--scenario', s);
  } else {
    if (!connector) throw new InputError('input connector: validate needs one (a path in your repository, os-brick or builtin)');
    if (scenarios.length > 0) throw new InputError('input scenarios: only the run command takes scenarios (validate runs the checks of its protocols)');
    argv.push('--connector', connector);
    for (const p of protocols) argv.push('--protocol', p);
    if (multipath) argv.push('--multipath');
  }
  return { argv, results };
}
