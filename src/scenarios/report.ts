import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { progress } from '../system/log.js';
import type { ScenarioResult, SuiteReport } from './results.js';

const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/**
 * A run that did not finish, in words (null for a finished one): under way, or interrupted and
 * found so by a later run or `down`.
 */
export function unfinished(report: SuiteReport): string | null {
  const during = report.current ? ` during ${report.current}` : '';
  if (report.state === 'interrupted') {
    return `INTERRUPTED${during}: the run's process (pid ${report.pid ?? '?'}) ended without finishing, found by ${report.interrupted?.by ?? 'a later command'} at ${report.interrupted?.detectedAt ?? '?'}; only the scenarios listed finished`;
  }
  if (report.state === 'running') return `RUNNING${report.current ? `: ${report.current} under way` : ''} (pid ${report.pid ?? '?'}); this report is rewritten as each scenario ends`;
  return null;
}

/**
 * Every finding of a scenario, one line each: per verdict what was left (volume-scoped), kept for
 * others, and host-wide (appeared, collateral); then per node the host-wide view at the end.
 */
export function findingLines(s: ScenarioResult): string[] {
  const out: string[] = [];
  for (const r of s.rows) {
    const at = `${r.node}, ${r.phase}`;
    for (const o of r.left) out.push(`evidence (${at}): ${o.kind} ${o.id}: ${o.evidence}`);
    for (const o of r.kept ?? []) out.push(`kept (${at}): ${o.kind} ${o.id}: ${o.evidence}`);
    for (const o of r.hostWide?.orphans ?? []) out.push(`host-wide (${at}): ${o.kind} ${o.id}: ${o.evidence}`);
    for (const o of r.hostWide?.collateral ?? []) out.push(`collateral (${at}): ${o.kind} ${o.id}: ${o.evidence}`);
  }
  for (const h of s.hostWide ?? []) {
    for (const o of h.orphans) out.push(`host-wide (${h.node}, end of scenario): ${o.kind} ${o.id}: ${o.evidence}`);
    for (const o of h.collateral) out.push(`collateral (${h.node}, end of scenario): ${o.kind} ${o.id}: ${o.evidence}`);
  }
  return out;
}

function leftText(r: ScenarioResult['rows'][number]): string {
  if (r.left.length === 0) return 'nothing';
  const byKind = new Map<string, number>();
  for (const o of r.left) byKind.set(o.kind, (byKind.get(o.kind) ?? 0) + 1);
  return [...byKind].map(([k, n]) => (n > 1 ? `${n} ${k}` : k)).join(', ');
}

/** Each node's guest, kernel and os-brick, on one line. */
function nodesLine(nodes: NonNullable<SuiteReport['nodes']>): string {
  return nodes.map((n) => `${n.name} ${n.guest} ${n.kernel ?? '?'} os-brick ${n.osBrick ?? '?'}`).join(', ');
}

/** The console table: per scenario its verdict, then per node and volume what was found and left. */
export function renderTable(report: SuiteReport): string {
  const out: string[] = [];
  if (report.subject) out.push(report.subject);
  out.push(`lab ${report.lab} (${report.accel.toUpperCase()}, kernel ${report.kernel}): ${report.scenarios.length} scenarios in ${secs(report.durationMs)}`);
  if (report.nodes) out.push(`nodes: ${nodesLine(report.nodes)}`);
  const notDone = unfinished(report);
  if (notDone) out.push(notDone);
  for (const s of report.scenarios) {
    out.push('');
    out.push(`${s.status === 'passed' ? 'PASS' : 'FAIL'}  ${s.name}  (${secs(s.durationMs)})`);
    out.push(`      ${s.title}`);
    const rows = s.rows.map((r) => [r.node, r.volume, r.phase, r.device ?? '-', r.paths.length ? r.paths.map((p) => p.split('/').pop()).join(' ') : '-', leftText(r), r.expected]);
    if (rows.length > 0) {
      const head = ['NODE', 'VOLUME', 'PHASE', 'DEVICE', 'PATHS', 'LEFT', 'EXPECTED'];
      const w = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
      const line = (cells: string[]): string => `      ${cells.map((c, i) => (c.length > w[i]! ? `${c.slice(0, w[i]! - 1)}…` : c.padEnd(w[i]!))).join('  ')}`.trimEnd();
      out.push(line(head));
      for (const r of rows) out.push(line(r));
    }
    for (const line of findingLines(s)) out.push(`      ${line}`);
    if (s.failure) out.push(`      failure: ${s.failure}`);
    for (const p of s.problems) out.push(`      problem: ${p}`);
    if (s.evidenceDir) out.push(`      node evidence: ${s.evidenceDir}`);
  }
  out.push('');
  out.push(`${report.passed} passed, ${report.failed} failed`);
  return `${out.join('\n')}\n`;
}

const xml = (s: string): string => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!).replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function renderJunit(report: SuiteReport): string {
  const cases = report.scenarios.map((s) => {
    const out = [...s.steps, ...findingLines(s)].join('\n');
    const failure = s.status === 'failed' ? `<failure message="${xml((s.failure ?? s.problems[0] ?? 'failed').split('\n')[0]!)}">${xml([s.failure, ...s.problems].filter(Boolean).join('\n'))}</failure>` : '';
    return `  <testcase classname="brick-lab.${s.kind}" name="${xml(s.name)}" time="${(s.durationMs / 1000).toFixed(3)}">${failure}<system-out>${xml(out)}</system-out></testcase>`;
  });
  // The scenario a run did not finish counts as an error (no verdict), so no CI reads it as green.
  const notDone = unfinished(report);
  if (notDone) cases.push(`  <testcase classname="brick-lab.run" name="${xml(report.current ?? 'the run')}" time="0"><error message="${xml(notDone)}"/></testcase>`);
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuite name="brick-lab ${report.subject ? `validate: ${xml(report.subject)}` : `scenarios (${xml(report.lab)})`}" tests="${cases.length}" failures="${report.failed}" errors="${notDone ? 1 : 0}" time="${(report.durationMs / 1000).toFixed(3)}" timestamp="${report.startedAt}">\n${cases.join('\n')}\n</testsuite>\n`;
}

const md = (s: string): string => s.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!).replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function renderMarkdown(report: SuiteReport): string {
  const out: string[] = [];
  const notDone = unfinished(report);
  const verdict = report.failed === 0 ? 'no orphans' : `${report.failed} scenario${report.failed > 1 ? 's' : ''} failed`;
  out.push(`## brick-lab: ${report.state === 'interrupted' ? 'interrupted' : report.state === 'running' ? 'running' : verdict}`);
  out.push('');
  if (notDone) out.push(`**${md(notDone)}.**`, '');
  if (report.subject) out.push(`${md(report.subject)}.`, '');
  out.push(`Lab \`${report.lab}\`, ${report.accel.toUpperCase()}, guest kernel ${report.kernel}; ${report.passed} passed, ${report.failed} failed in ${secs(report.durationMs)}.`);
  if (report.nodes) out.push('', `Nodes: ${md(nodesLine(report.nodes))}.`);
  out.push('');
  out.push('| | scenario | time | what the oracle said |');
  out.push('|---|---|---|---|');
  for (const s of report.scenarios) {
    const wide = (r: ScenarioResult['rows'][number]): string => {
      const n = (r.hostWide?.orphans.length ?? 0) + (r.hostWide?.collateral.length ?? 0);
      return n > 0 ? `; host-wide: ${r.hostWide!.orphans.length} new, ${r.hostWide!.collateral.length} collateral` : '';
    };
    const said = [
      ...s.rows.map((r) => md(`${r.node} ${r.volume} (${r.phase}): ${r.left.length === 0 ? 'clean' : leftText(r)}${wide(r)}${r.expected !== 'clean' ? ` (expected ${r.expected})` : ''}`)),
      ...(s.hostWide ?? []).filter((h) => h.orphans.length + h.collateral.length > 0).map((h) => md(`${h.node} at the end, host-wide: ${h.orphans.map((o) => o.kind).join(', ') || 'nothing new'}; collateral: ${h.collateral.map((o) => o.kind).join(', ') || 'none'}`)),
    ].join('<br>');
    out.push(`| ${s.status === 'passed' ? '✅' : '❌'} | \`${s.name}\` | ${secs(s.durationMs)} | ${said || '-'} |`);
  }
  const failed = report.scenarios.filter((s) => s.status === 'failed');
  if (failed.length > 0) {
    out.push('');
    out.push('### Failures');
    for (const s of failed) {
      out.push('');
      out.push(`**${s.name}**: ${md(s.failure ?? 'left the lab unclean or the kernel complained (below)')}`);
      for (const p of s.problems) out.push(`- ${md(p)}`);
      if (s.evidenceDir) out.push(`- node evidence in \`${s.evidenceDir}\``);
    }
  }
  return `${out.join('\n')}\n`;
}

/** report.json, junit.xml and summary.md in the results directory. */
export async function writeReport(report: SuiteReport, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: Array<[string, string]> = [
    ['report.json', `${JSON.stringify(report, null, 2)}\n`],
    ['junit.xml', renderJunit(report)],
    ['summary.md', renderMarkdown(report)],
  ];
  for (const [f, text] of files) await writeFile(join(dir, f), text);
  return files.map(([f]) => join(dir, f));
}

/** Write the report files, print the table (or the JSON), say where the files are; 0 when nothing failed. */
export async function emitReport(report: SuiteReport, resultsDir: string, json: boolean, tag: string): Promise<number> {
  const files = await writeReport(report, resultsDir);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : renderTable(report));
  progress(tag, `results: ${files.join(', ')}`);
  return report.failed === 0 && unfinished(report) === null ? 0 : 1;
}
