#!/usr/bin/env node
// The guest image's cache key for the action (action.yml): a hash of its recipe and builder, the
// files the e2e workflow's hashFiles() names, computed here because hashFiles() reads only the
// workspace and the action's files are not in it. Writes key=... to $GITHUB_OUTPUT (or stdout).
import { createHash } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const files = (p) => (statSync(p).isDirectory() ? readdirSync(p).sort().flatMap((e) => files(join(p, e))) : [p]);
const hash = createHash('sha256');
for (const f of ['images', 'src/lab/image', 'src/lab/providers/docker/image.ts'].flatMap((p) => files(join(root, p)))) {
  hash.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
}
const line = `key=brick-lab-image-${process.platform}-${hash.digest('hex').slice(0, 32)}\n`;
if (process.env.GITHUB_OUTPUT) appendFileSync(process.env.GITHUB_OUTPUT, line);
else process.stdout.write(line);
