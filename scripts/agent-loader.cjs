'use strict';
// Starts the bundled node agent with a V8 code cache. Under TCG, compiling fastify and its schema
// code costs a booting guest seconds of its only vCPU; the cache is made on the host at build time
// by the same Node.js binary the guests run, so V8 accepts it. Without a usable cache (another
// Node.js, a changed bundle) V8 rejects it and the agent starts the slow way, nothing else changes.
//   node agent-loader.cjs AGENT.cjs            run the agent
//   node agent-loader.cjs AGENT.cjs --make-cache   build time: warm up, write AGENT.cjs.cache
const fs = require('node:fs');
const path = require('node:path');
const vm = require('node:vm');
const Module = require('node:module');

// The agent runs with --compact-on-every-full-gc on node's command line (images/guest/stage2.sh,
// images/docker/node-entry.sh, and scripts/bundle-agent.mjs when it makes the code cache, which
// V8 only accepts under the flags it was made with): every full collection also compacts, so the
// old space gives back the pages its garbage left instead of keeping them taken. Without it a
// soak of 150 cycles left the compute agents' heap at 27 MiB taken for 15 MiB held and their RSS
// +13% (the held heap flat after ~100 cycles: no leak, only pages V8 kept); with it 16.4 MiB
// taken and RSS +5-6% once the soak ended, at no measurable cost to the cycle times. On the
// command line, where V8 reads it before anything runs.
const AGENT_NODE_FLAGS = ['--compact-on-every-full-gc'];
for (const f of AGENT_NODE_FLAGS) {
  if (!process.execArgv.includes(f)) console.error(`brick-lab agent: started without ${f}: the code cache will not be used, and the heap keeps what it once took`);
}

const file = path.resolve(process.argv[2] || '');
// What the agent keeps beside its bundle (the template's training file) is found from here.
process.env.BRICK_AGENT_DIR = path.dirname(file);
const makeCache = process.argv.includes('--make-cache');
const cacheFile = `${file}.cache`;
const source = fs.readFileSync(file, 'utf8');
let cachedData;
if (!makeCache) {
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData });
if (cachedData && script.cachedDataRejected) console.error('brick-lab agent: code cache rejected, compiling from source');
const mod = { exports: {}, id: file, filename: file, loaded: false };
const localRequire = Module.createRequire(file);
script.runInThisContext()(mod.exports, localRequire, mod, file, path.dirname(file));

if (makeCache) {
  Promise.resolve(mod.exports.started).then(() => {
    fs.writeFileSync(cacheFile, script.createCachedData());
    process.exit(0);
  });
}
