import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { labClient } from '../../src/lab/lab.js';
import type { Scenario } from '../../src/scenarios/catalog.js';
import { ALL_SCENARIOS, runScenario } from '../../src/scenarios/runner.js';
import { cli, ROOT } from './helpers.js';
import { describeScenarios } from './scenario-suite.js';
import { describeHostAgent } from './host-agent-cases.js';
import { describeValidate } from './validate-cases.js';

// Every scenario of the suite on one lab of a target and two computes: the round trips per
// protocol and path count, shared targets and live migration (two computes), then the orphan
// pairs, domain.md's and the field's (each on the first compute). Then a scenario that does not
// clean up after itself, to show the runner failing it, collecting the nodes' evidence and
// leaving the lab clean for the next one.
const sloppy: Scenario = {
  name: 'sloppy',
  title: 'attaches a volume and walks away',
  kind: 'round-trip',
  needs: { computes: 1, dataNetworks: 1 },
  refs: [],
  async run(ctx) {
    const v = await ctx.createIscsi({ name: 'vol', networks: ctx.networks(1) });
    await ctx.connect(ctx.compute, v);
    // And a line in the guest's kernel log that the runner's kernel check must catch.
    await ctx.sh(ctx.compute, 'echo "<4>brick-lab e2e: WARNING: written by the sloppy scenario" > /dev/kmsg');
  },
};

describeScenarios('suite', 'e2e-scen', ALL_SCENARIOS, 2, (lab) => {
  it('fails a scenario that does not clean up after itself, keeps the evidence, and cleans the lab', async () => {
    const resultsDir = join(ROOT, 'results', 'scenarios', 'sloppy');
    const r = await runScenario(lab(), sloppy, { resultsDir });
    expect(r.status).toBe('failed');
    expect(r.failure).toBeNull();
    expect(r.problems[0]).toMatch(/^did not clean up: sloppy-vol still attached on compute-1; volume sloppy-vol still on the target$/);
    expect(r.problems).toContain('compute-1 kernel: brick-lab e2e: WARNING: written by the sloppy scenario');
    expect(r.evidenceDir).toBe(join(resultsDir, 'evidence', 'sloppy'));
    for (const f of ['compute-1/iscsiadm-session-P3.txt', 'compute-1/dmesg.txt', 'compute-1/console.log', 'target-1/targetcli-ls.txt']) {
      expect(existsSync(join(r.evidenceDir!, f)), f).toBe(true);
    }
    const snap = await (await labClient(lab(), 'compute-1')).compute.inventory();
    expect(snap.iscsiSessions).toEqual([]);
    expect(snap.iscsiNodes).toEqual([]);
  }, 600_000);

  it('takes a node\'s data path down for N seconds and back (brick-lab outage), and refuses bad input naming it', async () => {
    const name = lab().name;
    // The link's state as the kernel reports it, once it settled (a link coming up passes through others).
    const operstate = async (): Promise<string> =>
      (await cli(['exec', '--name', name, 'compute-1', '--', 'sh', '-c', 'for i in $(seq 1 20); do s=$(cat /sys/class/net/path-b/operstate); case $s in up|down) break;; esac; sleep 0.1; done; echo $s'])).stdout.trim();
    const unknownNode = await cli(['outage', '--name', name, 'compute-9', '--seconds', '5']);
    expect(unknownNode.exitCode).toBe(1);
    expect(unknownNode.stderr).toContain('compute-9');
    const unknownNet = await cli(['outage', '--name', name, 'compute-1', '--seconds', '5', '--network', 'path-z']);
    expect(unknownNet.exitCode).toBe(1);
    expect(unknownNet.stderr).toContain('no data network "path-z" (it has path-a, path-b)');
    for (const bad of [['--seconds', '0'], ['--seconds', 'ten'], ['--seconds', '3601'], []]) {
      const r = await cli(['outage', '--name', name, 'compute-1', ...bad]);
      expect(r.exitCode, bad.join(' ')).toBe(2);
      expect(r.stderr).toContain('--seconds, a whole number from 1 to 3600');
    }
    expect(await operstate()).toBe('up');
    const down = await cli(['outage', '--name', name, 'compute-1', '--seconds', '3', '--network', 'path-b']);
    expect(down.exitCode, down.stderr).toBe(0);
    expect(down.stdout).toMatch(/^compute-1: path-b down until \d{4}-/);
    expect(await operstate()).toBe('down');
    // The agent brings it back by itself.
    await new Promise((r) => setTimeout(r, 4500));
    expect(await operstate()).toBe('up');
    // And --end brings it back before its time.
    expect((await cli(['outage', '--name', name, 'compute-1', '--seconds', '600', '--network', 'path-b'])).exitCode).toBe(0);
    expect(await operstate()).toBe('down');
    const end = await cli(['outage', '--name', name, 'compute-1', '--end']);
    expect(end.stdout).toBe('compute-1: every data network is up\n');
    expect(await operstate()).toBe('up');
  }, 120_000);

  it('reboots a node (brick-lab reboot, hard then clean) in the same QEMU with the same identity and its disk kept, restarts an agent, and refuses an unknown node', async () => {
    const name = lab().name;
    const sh = async (script: string): Promise<string> => {
      const r = await cli(['exec', '--name', name, 'compute-2', '--', 'sh', '-c', script]);
      expect(r.exitCode, `${script}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    const identity = 'cat /etc/iscsi/initiatorname.iscsi /etc/nvme/hostnqn /etc/nvme/hostid; ip -o -4 addr show | awk \'{print $2, $4}\'';
    const record = ['-m', 'node', '-T', 'iqn.2026-12.io.brick-lab:e2e.reboot', '-p', '10.10.1.10:3260'];
    const before = await sh(identity);
    expect(before).toContain(`InitiatorName=${lab().nodes.find((n) => n.name === 'compute-2')!.initiatorIqn}`);
    const pid = lab().nodes.find((n) => n.name === 'compute-2')!.pid;
    // On the node's disk: a node record (node.startup manual: nothing logs in at boot) and a file
    // in /etc/multipath; off it: a file in /tmp.
    await sh(`iscsiadm ${record.join(' ')} -o new >/dev/null && touch /etc/multipath/e2e-kept /tmp/e2e-gone`);
    const unknown = await cli(['reboot', '--name', name, 'compute-9']);
    expect(unknown.exitCode).toBe(1);
    expect(unknown.stderr).toContain(`NODE_UNKNOWN: lab ${name} has no node compute-9`);

    const hard = await cli(['reboot', '--name', name, 'compute-2', '--hard']);
    expect(hard.exitCode, hard.stderr).toBe(0);
    expect(hard.stdout).toMatch(/^compute-2: hard reset, ready again in \d+\.\d s \(boot [0-9a-f-]{36}\)\n$/);
    expect(await sh(identity)).toBe(before);
    expect(await sh(`iscsiadm ${record.join(' ')} | grep '^node.startup'; test -e /etc/multipath/e2e-kept && echo kept; test -e /tmp/e2e-gone || echo gone; iscsiadm -m session 2>&1 | grep -c e2e.reboot || true`)).toBe('node.startup = manual\nkept\ngone\n0\n');
    const timeline = await sh('cat /run/brick-lab/timeline');
    expect(timeline).toMatch(/^disk:boot-\d+ /m);
    expect(timeline).toMatch(/^ready /m);
    // A reboot is a real boot, whatever the node started from.
    expect(timeline).toMatch(/^stage2 /m);
    expect(timeline).not.toMatch(/^(template|restored)/m);
    // The same QEMU process: `down` finds it as before.
    const after = JSON.parse((await cli(['status', '--name', name, '--json'])).stdout) as { nodes: Array<{ name: string; state: string; pid: number }> };
    expect(after.nodes.find((n) => n.name === 'compute-2')).toMatchObject({ state: 'ready', pid });
    expect(after.nodes.every((n) => n.state === 'ready')).toBe(true);

    const clean = await cli(['reboot', '--name', name, 'compute-2', '--json']);
    expect(clean.exitCode, clean.stderr).toBe(0);
    const c = JSON.parse(clean.stdout) as { hard: boolean; fromBoot: string; bootId: string; seconds: number };
    expect(c.hard).toBe(false);
    expect(c.bootId).not.toBe(c.fromBoot);
    expect(c.fromBoot).toBe(/\(boot ([0-9a-f-]{36})\)/.exec(hard.stdout)![1]);
    expect(await sh(`iscsiadm ${record.join(' ')} -o delete && rm /etc/multipath/e2e-kept && echo removed`)).toBe('removed\n');

    const restart = await cli(['restart-agent', '--name', name, 'compute-2', '--json']);
    expect(restart.exitCode, restart.stderr).toBe(0);
    const r = JSON.parse(restart.stdout) as { fromPid: number; pid: number };
    expect(r.pid).not.toBe(r.fromPid);
  }, 300_000);

  // brick-lab validate on this same lab (the same target and two computes), after the suite.
  describeValidate(lab);
  // brick-lab agent on two of its computes playing a user's own hosts: the gate check of a live migration.
  describeHostAgent(lab);
});
