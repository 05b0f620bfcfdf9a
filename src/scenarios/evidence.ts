import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { labClient } from '../lab/lab.js';
import type { LabRecord } from '../lab/state.js';

/** What is collected from each node, by role: the file name and the command run in the node. */
const COMMANDS: Record<'all' | 'compute' | 'target', Array<[string, string[]]>> = {
  all: [
    ['dmesg.txt', ['dmesg']],
    ['lsblk.txt', ['lsblk', '-o', 'NAME,KNAME,TYPE,SIZE,WWN,HCTL,TRAN,STATE']],
    ['by-path.txt', ['ls', '-l', '/dev/disk/by-path', '/dev/disk/by-id']],
  ],
  compute: [
    ['iscsiadm-session-P3.txt', ['iscsiadm', '-m', 'session', '-P', '3']],
    ['iscsiadm-node.txt', ['iscsiadm', '-m', 'node']],
    ['nvme-list-subsys.txt', ['nvme', 'list-subsys']],
    ['multipath-ll.txt', ['multipath', '-ll']],
    ['multipathd-paths.txt', ['multipathd', 'show', 'paths']],
    ['inventory.json', []],
  ],
  target: [
    ['targetcli-ls.txt', ['targetcli', 'ls']],
    ['configfs-target.txt', ['find', '/sys/kernel/config/target', '-maxdepth', '8']],
    ['configfs-nvmet.txt', ['find', '/sys/kernel/config/nvmet', '-maxdepth', '6']],
    ['losetup.txt', ['losetup', '--list']],
  ],
};

/**
 * Per node: the console log, dmesg, the initiator tools' views (iscsiadm -P3, nvme list-subsys,
 * multipath -ll) and the target's configfs tree and targetcli ls, into dir/<node>/. A node that
 * does not answer still gets its console log and a note saying why the rest is missing. The nodes
 * are asked at once (each one's commands in turn): the target's targetcli alone takes seconds.
 */
export async function collectEvidence(rec: LabRecord, dir: string): Promise<string[]> {
  return (await Promise.all(rec.nodes.map((n) => nodeEvidence(rec, n, join(dir, n.name))))).flat();
}

async function nodeEvidence(rec: LabRecord, n: LabRecord['nodes'][number], out: string): Promise<string[]> {
  const written: string[] = [];
  await mkdir(out, { recursive: true });
  if (existsSync(n.consoleLog)) {
    await copyFile(n.consoleLog, join(out, 'console.log'));
    written.push(join(out, 'console.log'));
  }
  const client = await labClient(rec, n.name).catch(() => null);
  const reachable = client ? await client.health(5000).then(() => true, () => false) : false;
  if (!client || !reachable) {
    await writeFile(join(out, 'UNREACHABLE.txt'), `the agent of ${n.name} did not answer; only the console log was collected\n`);
    return written;
  }
  for (const [file, argv] of [...COMMANDS.all, ...COMMANDS[n.role === 'target' ? 'target' : 'compute']]) {
    let text: string;
    if (file === 'inventory.json') text = `${JSON.stringify(await client.compute.inventory().catch((e: Error) => ({ error: e.message })), null, 1)}\n`;
    else {
      const r = await client.exec(argv, { timeoutMs: 60_000 }).catch((e: Error) => ({ exitCode: null, stdout: '', stderr: e.message }));
      text = `$ ${argv.join(' ')}\n${r.stdout}${r.stderr ? `\n[stderr]\n${r.stderr}` : ''}${r.exitCode !== 0 ? `\n[exit ${r.exitCode}]\n` : ''}`;
    }
    await writeFile(join(out, file), text);
    written.push(join(out, file));
  }
  return written;
}
