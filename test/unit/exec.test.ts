import { describe, expect, it } from 'vitest';
import { exec, programsStarted, renderCommand, setChildOomScoreAdj, startLineWorker } from '../../src/system/exec.js';
import { rejection } from './refusal.js';

describe('exec', () => {
  it('returns a record of the finished command', async () => {
    const r = await exec(['sh', '-c', 'echo out; echo err >&2']);
    expect(r).toMatchObject({
      argv: ['sh', '-c', 'echo out; echo err >&2'],
      exitCode: 0,
      signal: null,
      stdout: 'out\n',
      stderr: 'err\n',
      timedOut: false,
      failed: false,
    });
    expect(typeof r.durationMs).toBe('number');
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
    expect(r.command).toBe(`sh -c 'echo out; echo err >&2'`);
  });

  it('with reject: false returns a non-zero exit instead of throwing', async () => {
    const r = await exec(['sh', '-c', 'echo nope >&2; exit 1'], { reject: false });
    expect(r.exitCode).toBe(1);
    expect(r.failed).toBe(true);
    expect(r.stderr).toBe('nope\n');
  });

  it('by default rejects a non-zero exit with EXEC_FAILED naming the command, its code and stderr', async () => {
    const err = await rejection(exec(['sh', '-c', 'echo broken pipe >&2; exit 4']));
    expect(err.code).toBe('EXEC_FAILED');
    expect(err.message).toContain(`sh -c 'echo broken pipe >&2; exit 4'`);
    expect(err.message).toContain('exited with 4');
    expect(err.message).toContain('broken pipe');
    expect(err.details).toMatchObject({ exitCode: 4 });
  });

  it('throws EXEC_NOT_FOUND for a program that does not exist, with or without reject', async () => {
    for (const reject of [true, false]) {
      const err = await rejection(exec(['brick-lab-no-such-program-xyz', '--help'], { reject }));
      expect(err.code).toBe('EXEC_NOT_FOUND');
      expect(err.message).toContain('brick-lab-no-such-program-xyz');
    }
  });

  it('does not mistake a command that prints ENOENT for a missing program', async () => {
    const r = await exec(['sh', '-c', 'echo ENOENT >&2; exit 2'], { reject: false });
    expect(r.exitCode).toBe(2);
  });

  it('stops a command at its timeout with EXEC_TIMEOUT', async () => {
    const err = await rejection(exec(['sleep', '5'], { timeoutMs: 200 }));
    expect(err.code).toBe('EXEC_TIMEOUT');
    expect(err.message).toContain('sleep 5');
    expect(err.details).toMatchObject({ timedOut: true });
  });

  it('with reject: false reports a timeout as timedOut', async () => {
    const r = await exec(['sleep', '5'], { timeoutMs: 200, reject: false });
    expect(r.timedOut).toBe(true);
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGTERM');
  });

  it('passes input on stdin', async () => {
    const r = await exec(['cat'], { input: 'line one\nline two' });
    expect(r.stdout).toBe('line one\nline two');
    const b = await exec(['wc', '-c'], { input: Buffer.from([0, 1, 2, 3]) });
    expect(b.stdout.trim()).toBe('4');
  });

  it('gives a command no stdin when there is no input', async () => {
    const r = await exec(['cat']);
    expect(r.stdout).toBe('');
  });

  it('passes arguments without a shell', async () => {
    const r = await exec(['printf', '%s|', 'a b', '$HOME', "it's", '*']);
    expect(r.stdout).toBe(`a b|$HOME|it's|*|`);
  });

  it('refuses an empty argument vector', async () => {
    expect((await rejection(exec([]))).code).toBe('EXEC_EMPTY');
  });
});

describe('renderCommand', () => {
  it('leaves plain words alone', () => {
    expect(renderCommand(['ip', '-n', 'brick-lab', 'link', 'set', 'br-path-a', 'up'])).toBe('ip -n brick-lab link set br-path-a up');
    expect(renderCommand(['mount', '-o', 'ro,nosuid', '/dev/sda1', '/mnt/x'])).toBe('mount -o ro,nosuid /dev/sda1 /mnt/x');
  });

  it('quotes spaces, shell characters and quotes so the line can be pasted', () => {
    expect(renderCommand(['echo', 'a b'])).toBe(`echo 'a b'`);
    expect(renderCommand(['echo', "it's"])).toBe(`echo 'it'\\''s'`);
    expect(renderCommand(['echo', '"x"', '$HOME', 'a;b', ''])).toBe(`echo '"x"' '$HOME' 'a;b' ''`);
  });

  it('renders a line a POSIX shell splits back into the same arguments', async () => {
    const argv = ['printf', '%s\n', 'a b', "it's", '"q"', '$HOME', 'a;b', '', '*'];
    const r = await exec(['sh', '-c', renderCommand(argv)]);
    expect(r.stdout).toBe('a b\nit\'s\n"q"\n$HOME\na;b\n\n*\n');
  });
});

describe('what the programs it starts inherit', () => {
  const ownAdj = async (): Promise<string> => (await exec(['cat', '/proc/self/oom_score_adj'])).stdout.trim();

  it('gives them the oom_score_adj set for children, not its own, and counts them', async () => {
    const inherited = await exec(['sh', '-c', 'sleep 0.3; cat /proc/self/oom_score_adj']);
    const started = programsStarted();
    setChildOomScoreAdj(600);
    try {
      const r = await exec(['sh', '-c', 'sleep 0.3; cat /proc/self/oom_score_adj']);
      expect(r.stdout.trim()).toBe('600');
      expect(r.stdout.trim()).not.toBe(inherited.stdout.trim());
      // A worker announces itself with id 0, then answers id 1.
      const worker = await startLineWorker(['sh', '-c', 'sleep 0.3; echo \'{"id":0,"ok":true}\'; read -r line; echo "{\\"id\\":1,\\"ok\\":true,\\"result\\":$(cat /proc/self/oom_score_adj)}"']);
      expect(await worker.request<number>('adj', {})).toBe(600);
      await worker.stop();
    } finally {
      setChildOomScoreAdj(null);
    }
    expect(programsStarted() - started).toBe(2);
    expect(await ownAdj()).toBe(inherited.stdout.trim());
  });
});
