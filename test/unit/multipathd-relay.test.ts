import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MULTIPATHD_SHOW_MAPS, MULTIPATHD_SHOW_PATHS, MULTIPATHD_TRIES, parseMultipathdMaps, parseMultipathdPaths, readMultipathdPaths, readToolViews } from '../../src/inventory/tools.js';
import { multipathdCommand, multipathdQuery, MultipathdRelay, useMultipathdRelay } from '../../src/inventory/multipathd.js';
import { startLineWorker } from '../../src/system/exec.js';

/**
 * The relay and its client for real, against a stand-in multipathd: a python3 server on an
 * abstract unix socket of its own, speaking libmpathcmd's framing (native size_t length, then the
 * NUL-terminated text). It answers the two queries with the captured multipathd output, and a few
 * test words: "slow X" (X after 40 ms), "nul" (a reply with a NUL inside), "silent" (no answer),
 * "bye" (closes the connection), "busy" ("timeout", multipathd's reply when it could not take its
 * lock in time). While the file LOG.busy holds a number N > 0, the next N queries get "timeout". Every request it reads is logged as [connection, text, NUL-ended].
 */
const FAKE_MULTIPATHD = String.raw`
import json, socket, struct, sys, threading, time
name, log, fixture = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
L = struct.Struct("@N")
# The bytes the CLI sends for these queries (multipathd/main.c builds them from its argv).
ANSWERS = {
    'show paths raw format "%d %w %t %T %o" \n': fixture["paths"],
    'show maps raw format "%n %w %d %N" \n': fixture["maps"],
}
lock = threading.Lock()

def busy_once():
    try:
        with open(log + ".busy") as f:
            n = int(f.read() or 0)
    except FileNotFoundError:
        return False
    if n <= 0:
        return False
    with open(log + ".busy", "w") as f:
        f.write(str(n - 1))
    return True

def exactly(c, n):
    buf = b""
    while len(buf) < n:
        chunk = c.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf

def serve(c, no):
    while True:
        head = exactly(c, L.size)
        if head is None:
            return
        data = exactly(c, L.unpack(head)[0])
        text = data[:-1].decode()
        with lock, open(log, "a") as f:
            f.write(json.dumps([no, text, data.endswith(b"\0")]) + "\n")
        if text == "bye":
            c.close()
            return
        if text == "silent":
            continue
        if text.startswith("slow "):
            time.sleep(0.04)
            reply = text[5:]
        elif text == "nul":
            reply = "before\0after"
        elif text == "busy" or busy_once():
            reply = "timeout\n"
        else:
            reply = ANSWERS.get(text, "fail\n")
        body = reply.encode() + b"\0"
        c.sendall(L.pack(len(body)) + body)

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0" + name)
s.listen(8)
print("ready", flush=True)
n = 0
while True:
    c, _ = s.accept()
    n += 1
    threading.Thread(target=serve, args=(c, n), daemon=True).start()
`;

const PYTHON = ['/usr/bin/python3', '/bin/python3'].find((p) => existsSync(p)) ?? 'python3';
const SRC = join(import.meta.dirname, '..', '..', 'src');
const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'guest-6.1.0-56', 'multipathd.json');
const fixture = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { paths: string; maps: string; multipathWwid: string };

let dir: string;
let serverScript: string;
/** The relay and the module it imports, side by side as they are in a guest's share. */
let relayScript: string;
let logFile: string;
let socketName: string;
let server: ChildProcess | null = null;
const relays: MultipathdRelay[] = [];
/** How many requests the fake multipathd had logged when the test started. */
let logMark = 0;

async function startServer(): Promise<void> {
  const child = spawn(PYTHON, [serverScript, socketName, logFile, FIXTURE], { stdio: ['ignore', 'pipe', 'inherit'] });
  server = child;
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the fake multipathd exited ${code}`)));
  });
}

async function stopServer(): Promise<void> {
  const child = server;
  server = null;
  if (!child || child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
}

function logLines(): string[] {
  return existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean) : [];
}

/**
 * The requests the fake multipathd read in this test: [connection, text, NUL-terminated], the
 * connections numbered 1, 2... in the order they first asked.
 */
function requests(): Array<[number, string, boolean]> {
  const conns: number[] = [];
  return logLines()
    .slice(logMark)
    .map((l) => JSON.parse(l) as [number, string, boolean])
    .map(([conn, text, nul]) => {
      if (!conns.includes(conn)) conns.push(conn);
      return [conns.indexOf(conn) + 1, text, nul];
    });
}

function relay(answerGraceMs?: number): MultipathdRelay {
  const r = new MultipathdRelay({ argv: [PYTHON, relayScript, socketName], startTimeoutMs: 10_000, ...(answerGraceMs ? { answerGraceMs } : {}) });
  relays.push(r);
  return r;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function gone(pid: number, ms = 2000): Promise<boolean> {
  for (const until = Date.now() + ms; Date.now() < until; await new Promise((r) => setTimeout(r, 20))) if (!alive(pid)) return true;
  return !alive(pid);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'brick-mpd-'));
  serverScript = join(dir, 'fake_multipathd.py');
  logFile = join(dir, 'requests.log');
  writeFileSync(serverScript, FAKE_MULTIPATHD);
  relayScript = join(dir, 'multipathd_relay.py');
  copyFileSync(join(SRC, 'inventory', 'multipathd_relay.py'), relayScript);
  copyFileSync(join(SRC, 'system', 'line_worker.py'), join(dir, 'line_worker.py'));
  // A name of this run's own (the kernel frees an abstract name as soon as its socket closes).
  socketName = `/brick-lab-test/${process.pid}/multipathd`;
  await startServer();
});

beforeEach(() => {
  logMark = logLines().length;
});

afterEach(async () => {
  relays.splice(0).forEach((r) => r.close());
  useMultipathdRelay(null);
  if (!server) await startServer();
});

afterAll(async () => {
  await stopServer();
  rmSync(dir, { recursive: true, force: true });
});

describe('multipathdCommand', () => {
  it('is what the CLI sends: each word and a space, a word with spaces in double quotes, a newline', () => {
    expect(multipathdCommand(MULTIPATHD_SHOW_PATHS.slice(1))).toBe('show paths raw format "%d %w %t %T %o" \n');
    expect(multipathdCommand(MULTIPATHD_SHOW_MAPS.slice(1))).toBe('show maps raw format "%n %w %d %N" \n');
    expect(multipathdCommand(['show', 'daemon'])).toBe('show daemon \n');
  });
});

describe('the multipathd relay', () => {
  it('answers the queries with the text multipathd sent, as the CLI prints it, over one connection', async () => {
    const r = relay();
    const paths = (await r.query(multipathdCommand(MULTIPATHD_SHOW_PATHS.slice(1))))!;
    const maps = (await r.query(multipathdCommand(MULTIPATHD_SHOW_MAPS.slice(1))))!;
    expect(paths).toBe(fixture.paths);
    expect(maps).toBe(fixture.maps);
    expect(parseMultipathdPaths(paths).map((p) => p.wwid)).toEqual([fixture.multipathWwid, fixture.multipathWwid]);
    expect(parseMultipathdMaps(maps).map((m) => m.dm)).toEqual(['dm-0']);
    // NUL-terminated requests, both on the first connection.
    expect(requests().map(([conn, , nul]) => [conn, nul])).toEqual([
      [1, true],
      [1, true],
    ]);
  });

  it('asks one question at a time, in the order asked, and matches each answer to its question', async () => {
    const r = relay();
    const answers = await Promise.all([r.query('slow one'), r.query('slow two'), r.query('slow three')]);
    expect(answers).toEqual(['one', 'two', 'three']);
    expect(requests().map(([conn, text]) => [conn, text])).toEqual([
      [1, 'slow one'],
      [1, 'slow two'],
      [1, 'slow three'],
    ]);
  });

  it('gives no answer (null) for "fail" and "timeout" (the CLI exits 1 then), and a reply up to its first NUL', async () => {
    const r = relay();
    expect(await r.query('no such command')).toBeNull();
    expect(await r.query('busy')).toBeNull();
    expect(await r.query('nul')).toBe('before');
  });

  it('gives nothing ("") when nothing listens, and answers once multipathd is there, with the same relay', async () => {
    await stopServer();
    const r = relay();
    expect(await r.query('slow x')).toBe('');
    const pid = r.pid;
    expect(pid).toBeGreaterThan(0);
    await startServer();
    expect(await r.query('slow back')).toBe('back');
    expect(r.pid).toBe(pid);
  });

  it('gives no answer when multipathd closes the connection, and asks again on a new one', async () => {
    const r = relay();
    expect(await r.query('slow a')).toBe('a');
    const pid = r.pid;
    expect(await r.query('bye')).toBeNull();
    expect(await r.query('slow b')).toBe('b');
    expect(r.pid).toBe(pid);
    expect(requests().map(([conn, text]) => [conn, text])).toEqual([
      [1, 'slow a'],
      [1, 'bye'],
      [2, 'slow b'],
    ]);
  });

  it('notices that multipathd restarted while the connection was idle, and answers from the new one', async () => {
    const r = relay();
    expect(await r.query('slow before')).toBe('before');
    await stopServer();
    await startServer();
    expect(await r.query('slow after')).toBe('after');
  });

  it('gives no answer when multipathd does not answer in time, and keeps the relay (it gave up itself)', async () => {
    const r = relay();
    expect(await r.query('slow a')).toBe('a');
    const pid = r.pid;
    const t0 = performance.now();
    expect(await r.query('silent', 100)).toBeNull();
    expect(performance.now() - t0).toBeLessThan(1000);
    // The late answer must not be taken for the next question's: that connection is dropped.
    expect(await r.query('slow b')).toBe('b');
    expect(r.pid).toBe(pid);
  });

  it('kills a relay that does not answer, and starts a new one on the next question', async () => {
    const r = relay(100);
    expect(await r.query('slow a')).toBe('a');
    const pid = r.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      expect(await r.query('slow never', 100)).toBeNull();
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGCONT');
    }
    expect(await gone(pid)).toBe(true);
    expect(await r.query('slow b')).toBe('b');
    expect(r.pid).not.toBe(pid);
  });

  it('starts a new relay when the last one exited', async () => {
    const r = relay();
    expect(await r.query('slow a')).toBe('a');
    const pid = r.pid!;
    process.kill(pid, 'SIGKILL');
    expect(await gone(pid)).toBe(true);
    expect(await r.query('slow b')).toBe('b');
    expect(r.pid).not.toBe(pid);
  });

  it('ends on close(), and the relay itself ends when its stdin closes', async () => {
    const r = relay();
    r.warmUp();
    expect(await r.query('slow a')).toBe('a');
    const pid = r.pid!;
    r.close();
    expect(await gone(pid)).toBe(true);
    expect(r.pid).toBeUndefined();

    const bare = await startLineWorker([PYTHON, relayScript, socketName], { startTimeoutMs: 10_000 });
    const t0 = performance.now();
    await bare.stop(); // closes stdin; SIGKILL only after 3 s
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(bare.running).toBe(false);
  });

  it('is what multipathdQuery uses once configured', async () => {
    useMultipathdRelay({ argv: [PYTHON, relayScript, socketName], startTimeoutMs: 10_000 });
    expect(await multipathdQuery(MULTIPATHD_SHOW_PATHS.slice(1))).toBe(fixture.paths);
    expect(requests().map(([, text]) => text)).toEqual(['show paths raw format "%d %w %t %T %o" \n']);
  });

  it('asks a multipathd that answered "timeout" again, and reads its answer (the oracle tool views)', async () => {
    useMultipathdRelay({ argv: [PYTHON, relayScript, socketName], startTimeoutMs: 10_000 });
    writeFileSync(`${logFile}.busy`, '2');
    try {
      expect((await readMultipathdPaths()).map((p) => p.wwid)).toEqual([fixture.multipathWwid, fixture.multipathWwid]);
    } finally {
      rmSync(`${logFile}.busy`, { force: true });
    }
    expect(requests().map(([, text]) => text)).toEqual(Array(3).fill('show paths raw format "%d %w %t %T %o" \n'));
  });

  it('never reads a multipathd that keeps giving no answer as one that tracks nothing: MULTIPATHD_SILENT after three tries', async () => {
    useMultipathdRelay({ argv: [PYTHON, relayScript, socketName], startTimeoutMs: 10_000 });
    writeFileSync(`${logFile}.busy`, String(MULTIPATHD_TRIES));
    try {
      await expect(readToolViews({ multipathd: true })).rejects.toMatchObject({ code: 'MULTIPATHD_SILENT', message: expect.stringContaining('show paths') });
    } finally {
      rmSync(`${logFile}.busy`, { force: true });
    }
    expect(requests()).toHaveLength(MULTIPATHD_TRIES);
  });

  it('reads a multipathd that does not run as one that holds nothing, asking once', async () => {
    await stopServer();
    useMultipathdRelay({ argv: [PYTHON, relayScript, socketName], startTimeoutMs: 10_000 });
    expect(await readToolViews({ multipathd: true, multipathdMaps: true })).toMatchObject({ multipathPaths: [], multipathMaps: [] });
  });
});
