#!/usr/bin/env node
// The action's main step (action.yml): its inputs into a brick-lab command line (inputs.mjs),
// run in this process by the CLI itself, from the workspace the step runs in (so that the
// connector and topology paths are the user's repository's). Writes the outputs `results` and
// `exit-code`, and exits with the CLI's code: 1 when a scenario or check failed.
import { appendFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { actionArgv, InputError } from './inputs.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let parsed;
try {
  parsed = actionArgv(process.env);
} catch (e) {
  if (!(e instanceof InputError)) throw e;
  process.stdout.write(`::error title=brick-lab::${e.message}\n`);
  process.exit(2);
}
process.stdout.write(`brick-lab ${parsed.argv.join(' ')}\n`);
const { cli } = await import(join(root, 'dist', 'src', 'cli.js'));
const code = await cli(parsed.argv);
if (process.env.GITHUB_OUTPUT) appendFileSync(process.env.GITHUB_OUTPUT, `results=${parsed.results}\nexit-code=${code}\n`);
process.exitCode = code;
