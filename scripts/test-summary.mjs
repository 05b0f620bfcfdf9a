// Prints the closing line of a test run, "N passed, N failed, N skipped", from vitest's JSON
// report, so that any reader of CI logs gets the counts in one plain line.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'results/tests.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (e) {
  console.log(`tests: no report at ${file} (${e.code ?? e.message})`);
  process.exit(0);
}
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
// A skipped test says why in its title (a host without what it needs): name each one.
for (const file of report.testResults ?? []) {
  for (const t of file.assertionResults ?? []) {
    if (t.status === 'skipped' || t.status === 'pending' || t.status === 'todo') console.log(`  skipped: ${t.fullName}`);
  }
}
// Where the time went: each test file's wall time (vitest's start and end of the file), longest first.
const files = (report.testResults ?? [])
  .filter((f) => typeof f.startTime === 'number' && typeof f.endTime === 'number')
  .map((f) => ({ name: f.name.replace(`${process.cwd()}/`, ''), seconds: (f.endTime - f.startTime) / 1000 }))
  .sort((a, b) => b.seconds - a.seconds);
if (files.length > 0) {
  console.log('test files by wall time:');
  for (const f of files) console.log(`  ${f.seconds.toFixed(1).padStart(7)} s  ${f.name}`);
}
