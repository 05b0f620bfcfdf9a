import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalise } from '../../src/osbrick/index.js';
import type { IscsiProperties } from '../../src/volume/properties.js';
import { byPathName } from '../../src/volume/bypath.js';
import { ExternalConnector } from '../../src/connectors/external/connector.js';
import { OPERATIONS, PROTOCOL_VERSION, type Operation } from '../../src/connectors/external/protocol.js';
import { CALL_ENV, DEFAULT_CONNECTOR_TIMEOUT_MS, PROTOCOL_ENV, runConnectorProgram } from '../../src/connectors/external/run.js';
import { REPLY_SCHEMA, replySchemaFor, REQUEST_SCHEMA } from '../../src/connectors/external/schema.js';
import { buildRequest, parseReply, validateRequest } from '../../src/connectors/external/validate.js';
import { BrickError } from '../../src/system/errors.js';
import { exec, which } from '../../src/system/exec.js';
import { rejection } from './refusal.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FIXTURES = join(ROOT, 'test/fixtures/connectors');
const EXAMPLES = join(ROOT, 'examples/iscsi-python');

const IQN = 'iqn.2010-10.org.openstack:volume-9a0d35d0';
/** A Cinder payload with keys brick-lab does not read: they must reach the program all the same. */
const DATA = {
  target_portal: '10.10.1.5:3260',
  target_iqn: IQN,
  target_lun: 1,
  target_portals: ['10.10.1.5:3260', '10.10.2.5:3260'],
  target_iqns: [IQN, IQN],
  target_luns: [1, 1],
  volume_id: '9a0d35d0-175a-11e4-8c21-0800200c9a66',
  auth_method: 'CHAP',
  auth_username: 'user',
  auth_password: 'secret-ABC',
  encrypted: false,
  qos_specs: null,
  access_mode: 'rw',
  vendor_extension: { pool: 'gold', ids: [1, 2, 3] },
};
const CINDER = { driver_volume_type: 'iscsi', data: DATA };

let tmp: string;
/** The fixtures and examples, copied with mode 0755 (the tests do not depend on modes in git). */
let bin: string;

function prog(name: string): string {
  return join(bin, name);
}

/** Live processes whose command line contains `text` (read from /proc, as pgrep -f does). */
async function processesWith(text: string): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.replace(/\0/g, ' ').includes(text)) out.push(`${pid}: ${cmd.replace(/\0/g, ' ').trim()}`);
  }
  return out;
}

async function readRecord(file: string): Promise<Array<{ cwd: string; protocol_env: string; request: Record<string, unknown> }>> {
  if (!existsSync(file)) return [];
  return (await readFile(file, 'utf8'))
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

let recordCount = 0;
function recordFile(): string {
  return join(tmp, `record-${++recordCount}.jsonl`);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'brick-external-'));
  bin = join(tmp, 'bin');
  await mkdir(bin);
  for (const f of await readdir(FIXTURES)) {
    await copyFile(join(FIXTURES, f), join(bin, f));
    await chmod(join(bin, f), 0o755);
  }
  for (const f of ['connector.py', 'connector-faulty.py']) {
    await copyFile(join(EXAMPLES, f), join(bin, f));
    await chmod(join(bin, f), 0o755);
  }
  // Exists, but not executable.
  await writeFile(join(bin, 'not-executable.sh'), '#!/bin/sh\necho \'{"version": 1, "ok": true, "result": null}\'\n');
  await chmod(join(bin, 'not-executable.sh'), 0o644);
  // Executable, but its interpreter is not installed.
  await writeFile(join(bin, 'no-interpreter.py'), '#!/nonexistent/bin/python9\nprint("{}")\n');
  await chmod(join(bin, 'no-interpreter.py'), 0o755);
  await mkdir(join(bin, 'a-directory'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------

const VALID_RESULTS: { [O in Operation]: unknown[] } = {
  connect_volume: [
    { type: 'block', path: '/dev/sdb' },
    { type: 'block', path: '/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.2010-10.org.example:x-lun-0', scsi_wwn: '36001405abc', multipath_id: null },
    { type: 'block', path: '/dev/dm-3', scsi_wwn: null, multipath_id: '36001405abc', vendor: { session: 7, paths: ['sdb', 'sdc'] } },
  ],
  disconnect_volume: [null, {}],
  get_volume_paths: [[], ['/dev/disk/by-path/ip-10.0.0.1:3260-iscsi-iqn.2010-10.org.example:x-lun-0', '/dev/sdb']],
  get_all_available_volumes: [[], ['/dev/disk/by-path/a', 'nvme0n1']],
  get_search_path: ['/dev/disk/by-path', null],
};

/** [operation, reply, the field named, text the message must hold] */
const BAD_REPLIES: Array<[Operation, unknown, string, string]> = [
  ['get_search_path', [], 'reply', 'expected a JSON object'],
  ['get_search_path', { ok: true, result: null }, 'version', 'missing; expected 1'],
  ['get_search_path', { version: 2, ok: true, result: null }, 'version', 'expected 1, got 2'],
  ['get_search_path', { version: '1', ok: true, result: null }, 'version', 'expected 1, got "1"'],
  ['get_search_path', { version: 1, result: null }, 'ok', 'missing'],
  ['get_search_path', { version: 1, ok: 'yes', result: null }, 'ok', 'expected true or false'],
  ['get_search_path', { version: 1, ok: true }, 'result', 'missing'],
  ['get_search_path', { version: 1, ok: true, result: null, error: null }, 'error', 'unexpected key'],
  ['get_search_path', { version: 1, ok: true, result: null, results: [] }, 'results', 'unexpected key'],
  ['get_search_path', { version: 1, ok: true, result: 3 }, 'result', 'a path'],
  ['get_search_path', { version: 1, ok: true, result: '' }, 'result', 'a path'],
  ['connect_volume', { version: 1, ok: true, result: null }, 'result', 'a device_info object'],
  ['connect_volume', { version: 1, ok: true, result: { type: 'block' } }, 'result.path', 'missing'],
  ['connect_volume', { version: 1, ok: true, result: { path: '/dev/sdb' } }, 'result.type', 'missing'],
  ['connect_volume', { version: 1, ok: true, result: { type: 'file', path: '/dev/sdb' } }, 'result.type', 'expected "block", got "file"'],
  ['connect_volume', { version: 1, ok: true, result: { type: 'block', path: 'sdb' } }, 'result.path', 'a path under /dev'],
  ['connect_volume', { version: 1, ok: true, result: { type: 'block', path: '/tmp/disk.img' } }, 'result.path', 'a path under /dev'],
  ['connect_volume', { version: 1, ok: true, result: { type: 'block', path: '/dev/sdb\n' } }, 'result.path', 'no control characters'],
  ['connect_volume', { version: 1, ok: true, result: { type: 'block', path: '/dev/sdb', scsi_wwn: 3600 } }, 'result.scsi_wwn', 'a string or null'],
  ['connect_volume', { version: 1, ok: true, result: { type: 'block', path: '/dev/sdb', multipath_id: false } }, 'result.multipath_id', 'a string or null'],
  ['disconnect_volume', { version: 1, ok: true, result: { removed: ['sdb'] } }, 'result', 'expected null or {}'],
  ['disconnect_volume', { version: 1, ok: true, result: true }, 'result', 'expected null or {}'],
  ['get_volume_paths', { version: 1, ok: true, result: '/dev/sdb' }, 'result', 'a list of absolute paths'],
  ['get_volume_paths', { version: 1, ok: true, result: ['/dev/sdb', 'sdc'] }, 'result[1]', 'an absolute path'],
  ['get_volume_paths', { version: 1, ok: true, result: [null] }, 'result[0]', 'an absolute path'],
  ['get_all_available_volumes', { version: 1, ok: true, result: {} }, 'result', 'a list of strings'],
  ['get_all_available_volumes', { version: 1, ok: true, result: ['ok', 7] }, 'result[1]', 'a non-empty string'],
  ['get_all_available_volumes', { version: 1, ok: true, result: [''] }, 'result[0]', 'a non-empty string'],
  ['connect_volume', { version: 1, ok: false }, 'error', 'missing'],
  ['connect_volume', { version: 1, ok: false, error: 'boom' }, 'error', 'expected an object'],
  ['connect_volume', { version: 1, ok: false, error: { message: 'boom' } }, 'error.type', 'missing'],
  ['connect_volume', { version: 1, ok: false, error: { type: '', message: 'boom' } }, 'error.type', 'a non-empty string'],
  ['connect_volume', { version: 1, ok: false, error: { type: 'X' } }, 'error.message', 'missing'],
  ['connect_volume', { version: 1, ok: false, error: { type: 'X', message: 42 } }, 'error.message', 'expected a string'],
  ['connect_volume', { version: 1, ok: false, error: { type: 'X', message: 'm' }, result: null }, 'result', 'unexpected key'],
];

describe('parseReply', () => {
  it('accepts every valid result shape and returns the result as sent (unknown device_info keys kept)', () => {
    for (const op of OPERATIONS) {
      for (const result of VALID_RESULTS[op]) {
        expect(parseReply(op, `${JSON.stringify({ version: 1, ok: true, result })}\n`)).toEqual(result);
      }
    }
    expect(parseReply('connect_volume', JSON.stringify({ version: 1, ok: true, result: VALID_RESULTS.connect_volume[2] }))).toMatchObject({ vendor: { session: 7 } });
  });

  it('refuses what is not one JSON document with CONNECTOR_BAD_JSON, quoting the first 200 characters', () => {
    const long = `Connecting... ${'x'.repeat(300)}TAIL`;
    const err = expectThrown(() => parseReply('connect_volume', long, '/opt/vendor/conn'), 'CONNECTOR_BAD_JSON');
    expect(err.message).toContain('/opt/vendor/conn');
    expect(err.message).toContain('connect_volume');
    expect(err.message).toContain(JSON.stringify(long.slice(0, 200)));
    expect(err.message).not.toContain('TAIL');
    expect(err.message).toContain(`first 200 of ${long.length} characters`);
    expect(err.message).toContain('stderr');
    for (const text of ['{"version": 1, "ok": true, "result": null}\n{"version": 1, "ok": true, "result": null}', '{"version": 1, "ok": tr', 'null garbage']) {
      expect(expectThrown(() => parseReply('get_search_path', text), 'CONNECTOR_BAD_JSON').message).toContain('not print one JSON document');
    }
    for (const empty of ['', '  \n']) {
      expect(expectThrown(() => parseReply('get_search_path', empty), 'CONNECTOR_BAD_JSON').message).toContain('printed nothing on stdout');
    }
  });

  it('refuses replies that do not fit the operation with CONNECTOR_BAD_REPLY naming the field and what was expected', () => {
    for (const [op, reply, field, text] of BAD_REPLIES) {
      const err = expectThrown(() => parseReply(op, JSON.stringify(reply), '/opt/vendor/conn'), 'CONNECTOR_BAD_REPLY');
      expect(err.message, JSON.stringify(reply)).toContain(`: ${field}: `);
      expect(err.message, JSON.stringify(reply)).toContain(text);
      expect(err.message).toContain(`/opt/vendor/conn replied to ${op}`);
      expect(err.details).toMatchObject({ operation: op, field });
    }
  });

  it('refuses a result that fits another operation but not this one', () => {
    const paths = JSON.stringify({ version: 1, ok: true, result: ['/dev/sdb'] });
    expect(parseReply('get_volume_paths', paths)).toEqual(['/dev/sdb']);
    expectThrown(() => parseReply('connect_volume', paths), 'CONNECTOR_BAD_REPLY');
    expectThrown(() => parseReply('get_search_path', paths), 'CONNECTOR_BAD_REPLY');
    expectThrown(() => parseReply('disconnect_volume', JSON.stringify({ version: 1, ok: true, result: { type: 'block', path: '/dev/sdb' } })), 'CONNECTOR_BAD_REPLY');
  });

  it('turns an ok:false reply into CONNECTOR_FAILED carrying the connector type and message', () => {
    const reply = { version: 1, ok: false, error: { type: 'VolumeDeviceNotFound', message: 'no device for LUN 1', traceback: 'kept out' } };
    const err = expectThrown(() => parseReply('connect_volume', JSON.stringify(reply), '/opt/vendor/conn'), 'CONNECTOR_FAILED');
    expect(err.message).toBe('connector program /opt/vendor/conn failed connect_volume: VolumeDeviceNotFound: no device for LUN 1');
    expect(err.details).toMatchObject({ operation: 'connect_volume', type: 'VolumeDeviceNotFound', message: 'no device for LUN 1' });
  });
});

describe('buildRequest and validateRequest', () => {
  const base = { version: 1, protocol: 'iscsi' };

  it('puts exactly the fields of each operation in the request, with copies of the dicts', () => {
    const props = structuredClone(DATA);
    const connect = buildRequest('connect_volume', 'iscsi', { connection_properties: props, multipath: true });
    expect(connect).toEqual({ ...base, operation: 'connect_volume', connection_properties: DATA, multipath: true });
    expect(buildRequest('connect_volume', 'iscsi', { connection_properties: props })).toMatchObject({ multipath: false });
    props.target_lun = 99;
    expect(connect.connection_properties.target_lun).toBe(1);

    const info = { type: 'block' as const, path: '/dev/sdb', scsi_wwn: '36001405abc', vendor: { x: 1 } };
    expect(buildRequest('disconnect_volume', 'iscsi', { connection_properties: DATA, device_info: info, force: true })).toEqual({
      ...base,
      operation: 'disconnect_volume',
      connection_properties: DATA,
      device_info: info,
      force: true,
      ignore_errors: false,
    });
    expect(buildRequest('disconnect_volume', 'iscsi', { connection_properties: DATA })).toMatchObject({ device_info: null, force: false, ignore_errors: false });
    expect(buildRequest('get_volume_paths', 'nvmeof', { connection_properties: { target_nqn: 'nqn.x' } })).toEqual({
      version: 1,
      protocol: 'nvmeof',
      operation: 'get_volume_paths',
      connection_properties: { target_nqn: 'nqn.x' },
    });
    expect(buildRequest('get_all_available_volumes', 'local', {})).toEqual({ version: 1, protocol: 'local', operation: 'get_all_available_volumes', connection_properties: null });
    expect(buildRequest('get_search_path', 'iscsi', {})).toEqual({ ...base, operation: 'get_search_path', connection_properties: null });
  });

  it('refuses requests that are not version 1 requests, naming the field', () => {
    const ok = { ...base, operation: 'connect_volume', connection_properties: {}, multipath: false };
    const cases: Array<[unknown, string]> = [
      [{ ...ok, version: 2 }, 'version: expected 1'],
      [{ ...ok, operation: 'attach' }, 'operation: expected one of connect_volume'],
      [{ ...ok, protocol: 'rbd' }, 'protocol: expected one of iscsi, nvmeof, fc, local'],
      [{ ...ok, multipath: 'yes' }, 'multipath: expected true or false'],
      [{ ...ok, force: true }, 'force: unexpected key'],
      [{ ...ok, connection_properties: null }, 'connection_properties: expected an object, got null'],
      [{ ...base, operation: 'connect_volume', connection_properties: {} }, 'multipath: missing'],
      [{ ...base, operation: 'disconnect_volume', connection_properties: {}, device_info: { path: '/dev/sdb' }, force: false, ignore_errors: false }, 'device_info.type: missing'],
      [{ ...base, operation: 'get_volume_paths', connection_properties: null }, 'connection_properties: expected an object'],
    ];
    for (const [req, text] of cases) {
      const err = expectThrown(() => validateRequest(req), 'CONNECTOR_BAD_REQUEST');
      expect(err.message, JSON.stringify(req)).toContain(text);
    }
    expect(() => buildRequest('connect_volume', 'iscsi', { connection_properties: { n: 10n } as never })).toThrow(/connection_properties: cannot be written as JSON/);
  });
});

describe('REQUEST_SCHEMA and REPLY_SCHEMA', () => {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  const request = ajv.compile(REQUEST_SCHEMA);
  const replyFor = Object.fromEntries(OPERATIONS.map((op) => [op, ajv.compile(replySchemaFor(op))])) as Record<Operation, ReturnType<typeof ajv.compile>>;
  const anyReply = ajv.compile(REPLY_SCHEMA);

  it('accept what the validators accept', () => {
    for (const op of OPERATIONS) {
      for (const result of VALID_RESULTS[op]) {
        const reply = { version: 1, ok: true, result };
        expect(replyFor[op](reply), `${op} ${JSON.stringify(result)}: ${JSON.stringify(replyFor[op].errors)}`).toBe(true);
        expect(anyReply(reply)).toBe(true);
      }
      expect(replyFor[op]({ version: 1, ok: false, error: { type: 'X', message: '', extra: 1 } })).toBe(true);
    }
    const requests = [
      buildRequest('connect_volume', 'iscsi', { connection_properties: DATA, multipath: true }),
      buildRequest('disconnect_volume', 'iscsi', { connection_properties: DATA }),
      buildRequest('disconnect_volume', 'nvmeof', { connection_properties: {}, device_info: { type: 'block', path: '/dev/nvme0n1', extra: [1] }, force: true, ignore_errors: true }),
      buildRequest('get_volume_paths', 'local', { connection_properties: { device_path: '/dev/sdb' } }),
      buildRequest('get_all_available_volumes', 'iscsi', {}),
      buildRequest('get_all_available_volumes', 'iscsi', { connection_properties: DATA }),
      buildRequest('get_search_path', 'iscsi', {}),
    ];
    for (const r of requests) expect(request(r), JSON.stringify(request.errors)).toBe(true);
  });

  it('refuse what the validators refuse', () => {
    for (const [op, reply] of BAD_REPLIES) expect(replyFor[op](reply), `${op} ${JSON.stringify(reply)}`).toBe(false);
    const bad = [
      { version: 1, protocol: 'iscsi', operation: 'connect_volume', connection_properties: {} },
      { version: 1, protocol: 'iscsi', operation: 'connect_volume', connection_properties: {}, multipath: false, force: false },
      { version: 2, protocol: 'iscsi', operation: 'get_search_path', connection_properties: null },
      { version: 1, protocol: 'rbd', operation: 'get_search_path', connection_properties: null },
      { version: 1, protocol: 'iscsi', operation: 'get_volume_paths', connection_properties: null },
      { version: 1, protocol: 'iscsi', operation: 'disconnect_volume', connection_properties: {}, device_info: { type: 'block' }, force: false, ignore_errors: false },
    ];
    for (const r of bad) {
      expect(request(r), JSON.stringify(r)).toBe(false);
      expect(() => validateRequest(r)).toThrow(BrickError);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('runConnectorProgram', () => {
  const searchPath = buildRequest('get_search_path', 'iscsi', {});
  const connect = buildRequest('connect_volume', 'iscsi', { connection_properties: DATA });

  it('waits 120 s by default', () => {
    expect(DEFAULT_CONNECTOR_TIMEOUT_MS).toBe(120_000);
  });

  it('runs the program with the request on stdin, in its own directory, with BRICK_CONNECTOR_PROTOCOL=1', async () => {
    const record = recordFile();
    expect(await runConnectorProgram(prog('echo.sh'), searchPath, { env: { FIXTURE_RECORD: record } })).toBe('/dev/disk/by-path');
    const [call] = await readRecord(record);
    expect(call).toEqual({ cwd: bin, protocol_env: '1', request: searchPath });
    expect(PROTOCOL_ENV).toBe('BRICK_CONNECTOR_PROTOCOL');
  });

  it('CONNECTOR_NOT_FOUND for a file that does not exist or a name not on PATH', async () => {
    const missing = join(tmp, 'nowhere/connector');
    const err = await rejection(runConnectorProgram(missing, searchPath));
    expect(err.code).toBe('CONNECTOR_NOT_FOUND');
    expect(err.message).toContain(missing);
    expect(err.message).toContain('does not exist');
    const bare = await rejection(runConnectorProgram('brick-lab-no-such-connector', searchPath));
    expect(bare.code).toBe('CONNECTOR_NOT_FOUND');
    expect(bare.message).toContain('brick-lab-no-such-connector is not an executable on PATH');
  });

  it('CONNECTOR_NOT_FOUND naming the #! line when the interpreter is missing', async () => {
    const err = await rejection(runConnectorProgram(prog('no-interpreter.py'), searchPath));
    expect(err.code).toBe('CONNECTOR_NOT_FOUND');
    expect(err.message).toContain(prog('no-interpreter.py'));
    expect(err.message).toContain('#!/nonexistent/bin/python9');
  });

  it('CONNECTOR_NOT_EXECUTABLE for a file without execute permission, saying chmod +x', async () => {
    const err = await rejection(runConnectorProgram(prog('not-executable.sh'), searchPath));
    expect(err.code).toBe('CONNECTOR_NOT_EXECUTABLE');
    expect(err.message).toContain(`chmod +x ${prog('not-executable.sh')}`);
    expect(err.details).toMatchObject({ mode: '0644' });
    const dir = await rejection(runConnectorProgram(prog('a-directory'), searchPath));
    expect(dir.code).toBe('CONNECTOR_NOT_EXECUTABLE');
    expect(dir.message).toContain('is a directory');
  });

  it('CONNECTOR_BAD_JSON when stdout is not JSON, quoting it', async () => {
    const err = await rejection(runConnectorProgram(prog('not-json.sh'), connect));
    expect(err.code).toBe('CONNECTOR_BAD_JSON');
    expect(err.message).toContain(prog('not-json.sh'));
    expect(err.message).toContain('"Connecting volume... done (device /dev/sdb)\\n"');
  });

  it('CONNECTOR_BAD_REPLY for a reply of the wrong shape, naming the field', async () => {
    const err = await rejection(runConnectorProgram(prog('wrong-shape.sh'), connect));
    expect(err.code).toBe('CONNECTOR_BAD_REPLY');
    expect(err.message).toContain(`connector program ${prog('wrong-shape.sh')} replied to connect_volume`);
    expect(err.message).toContain('result.path: missing');
    const paths = await rejection(runConnectorProgram(prog('wrong-shape.sh'), buildRequest('get_volume_paths', 'iscsi', { connection_properties: DATA })));
    expect(paths.message).toContain('result: expected a list of absolute paths, got an object');
  });

  it('CONNECTOR_FAILED for an ok:false reply, with the connector type and message', async () => {
    const err = await rejection(runConnectorProgram(prog('fails.sh'), connect));
    expect(err.code).toBe('CONNECTOR_FAILED');
    expect(err.message).toContain(prog('fails.sh'));
    expect(err.message).toContain('VolumeDeviceNotFound: no device for LUN 1 of iqn.2010-10.org.example:vol1 after 30 s');
    expect(err.details).toMatchObject({ type: 'VolumeDeviceNotFound', stderr: 'fails: looking for the device' });
  });

  it('CONNECTOR_CRASHED for a non-zero exit, with the code and the last lines of stderr', async () => {
    const err = await rejection(runConnectorProgram(prog('crashes.sh'), connect));
    expect(err.code).toBe('CONNECTOR_CRASHED');
    expect(err.message).toContain(`${prog('crashes.sh')} exited with 3 during connect_volume`);
    expect(err.message).toContain('cannot open /etc/vendor/array.conf');
    expect(err.message).toContain('log line 30');
    expect(err.message).not.toContain('log line 5\n');
    expect(err.details).toMatchObject({ exitCode: 3, signal: null });
  });

  it('CONNECTOR_CRASHED for a program killed by a signal', async () => {
    const err = await rejection(runConnectorProgram(prog('crashes.sh'), connect, { env: { FIXTURE_SIGNAL: 'KILL' } }));
    expect(err.code).toBe('CONNECTOR_CRASHED');
    expect(err.message).toContain('was killed by SIGKILL during connect_volume');
    expect(err.details).toMatchObject({ signal: 'SIGKILL' });
  });

  it('CONNECTOR_CRASHED for a non-zero exit even after an error reply, saying why', async () => {
    const reply = JSON.stringify({ version: 1, ok: false, error: { type: 'ArrayOffline', message: 'array unreachable' } });
    const err = await rejection(runConnectorProgram(prog('crashes.sh'), connect, { env: { FIXTURE_STDOUT: reply } }));
    expect(err.code).toBe('CONNECTOR_CRASHED');
    expect(err.message).toContain('ArrayOffline: array unreachable');
    expect(err.message).toContain('exit status 0');
  });

  it('CONNECTOR_TIMEOUT ends the program and the processes it started, also one that left its session', { timeout: 20_000 }, async () => {
    const tag = String(Date.now() % 1_000_000_000).padStart(9, '0');
    const started = Date.now();
    const run = rejection(runConnectorProgram(prog('sleeps.sh'), connect, { timeoutMs: 1500, killGraceMs: 300, env: { FIXTURE_TAG: tag } }));
    // The three sleepers exist while the call runs (else the test below proves nothing).
    let seen: string[] = [];
    for (let i = 0; i < 100 && seen.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = await processesWith(`.${tag}`);
    }
    expect(seen.length, seen.join('\n')).toBe(3);
    const err = await run;
    expect(err.code).toBe('CONNECTOR_TIMEOUT');
    expect(err.message).toContain(`${prog('sleeps.sh')} did not finish connect_volume within 1.5 s`);
    expect(err.message).toContain('killed together with the processes it started');
    expect(err.message).toContain('sleeps: starting children');
    expect(err.details).toMatchObject({ stillRunning: [] });
    // A child that holds the pipes does not make the call hang until it exits by itself.
    expect(Date.now() - started).toBeLessThan(8000);
    expect(await processesWith(`.${tag}`)).toEqual([]);
    expect(CALL_ENV).toBe('BRICK_CONNECTOR_CALL');
  });
});

// ---------------------------------------------------------------------------------------------

describe('ExternalConnector', () => {
  /** A fake /dev and /sys for resolving reply paths to kernel names. */
  let root: string;

  beforeAll(async () => {
    root = join(tmp, 'root');
    await mkdir(join(root, 'dev/disk/by-path'), { recursive: true });
    await mkdir(join(root, 'dev/mapper'), { recursive: true });
    for (const d of ['sdb', 'sdc', 'sdz', 'dm-3']) await writeFile(join(root, 'dev', d), '');
    await symlink('../../sdz', join(root, 'dev/disk/by-path/ip-10.10.1.5:3260-iscsi-x-lun-1'));
    await symlink('../../sdb', join(root, 'dev/disk/by-path/ip-10.10.2.5:3260-iscsi-x-lun-1'));
    await symlink('../../sdq', join(root, 'dev/disk/by-path/dangling'));
    await symlink('../dm-3', join(root, 'dev/mapper/mpatha'));
    await mkdir(join(root, 'sys/block/dm-3/slaves'), { recursive: true });
    for (const s of ['sdc', 'sdb']) await writeFile(join(root, 'sys/block/dm-3/slaves', s), '');
    // sdz's WWID as the kernel shows it: the identity comes from here, not from the reply's scsi_wwn.
    await mkdir(join(root, 'sys/block/sdz/device'), { recursive: true });
    await writeFile(join(root, 'sys/block/sdz/device/wwid'), 'naa.60014050123456789abcdef0123456789\n');
  });

  function echo(env: Record<string, string> = {}): { c: ExternalConnector<'iscsi'>; record: string } {
    const record = recordFile();
    return { c: new ExternalConnector(prog('echo.sh'), 'iscsi', { root, env: { FIXTURE_RECORD: record, ...env } }), record };
  }

  it('normalise refuses a malformed IQN, portal or LUN before any program runs', async () => {
    const { c, record } = echo();
    const bad: Array<[Record<string, unknown>, string]> = [
      [{ ...DATA, target_portals: undefined, target_iqns: undefined, target_iqn: 'iqn.bad name' }, 'BAD_IQN'],
      [{ target_portal: 'fe80::1:3260', target_iqn: IQN, target_lun: 1 }, 'BAD_PORTAL'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: IQN, target_lun: '1' }, 'BAD_LUN'],
      [{ ...DATA, target_iqns: [IQN, 'IQN.Upper'] }, 'BAD_IQN'],
    ];
    for (const [data, code] of bad) {
      let caught: unknown;
      try {
        await c.connectVolume(c.normalise({ driver_volume_type: 'iscsi', data }));
      } catch (e) {
        caught = e;
      }
      expect(caught, code).toBeInstanceOf(BrickError);
      expect((caught as BrickError).code).toBe(code);
    }
    expect(() => c.normalise({ driver_volume_type: 'nvmeof', data: DATA })).toThrow(expect.objectContaining({ code: 'WRONG_VOLUME_TYPE' }));
    expect(existsSync(record)).toBe(false);
  });

  it('normalise keeps the os-brick dict as given, from connection_info or bare', () => {
    const { c } = echo();
    for (const payload of [CINDER, DATA]) {
      const p = c.normalise(structuredClone(payload));
      expect(p.osBrick).toEqual(DATA);
      expect(p.paths).toEqual((normalise('iscsi', DATA) as IscsiProperties).paths);
      expect(p.protocol).toBe('iscsi');
    }
  });

  it('connectVolume sends the raw dict and multipath, and maps the reply to a DeviceInfo', async () => {
    const { c, record } = echo({ FIXTURE_DEVICE: '/dev/disk/by-path/ip-10.10.1.5:3260-iscsi-x-lun-1' });
    const props = c.normalise(CINDER);
    const dev = await c.connectVolume(props, { multipath: true });
    // The reply says scsi_wwn 36001405deadbeef; the identity is what sysfs says of sdz.
    expect(dev).toEqual({ type: 'block', path: '/dev/disk/by-path/ip-10.10.1.5:3260-iscsi-x-lun-1', devices: ['sdz'], multipath: false, identity: '360014050123456789abcdef0123456789' });
    const [call] = await readRecord(record);
    expect(call!.request).toEqual({ version: PROTOCOL_VERSION, operation: 'connect_volume', protocol: 'iscsi', connection_properties: DATA, multipath: true });
    await c.connectVolume(props);
    expect((await readRecord(record))[1]!.request.multipath).toBe(false);
  });

  it('connectVolume reports a dm device as multipath, with its slaves as the devices', async () => {
    const { c } = echo({ FIXTURE_DEVICE: '/dev/mapper/mpatha' });
    expect(await c.connectVolume(c.normalise(CINDER), { multipath: true })).toMatchObject({ path: '/dev/mapper/mpatha', devices: ['sdb', 'sdc'], multipath: true });
    const gone = echo({ FIXTURE_DEVICE: '/dev/sdx' }).c;
    expect(await gone.connectVolume(gone.normalise(CINDER))).toMatchObject({ path: '/dev/sdx', devices: [], multipath: false });
  });

  it('disconnectVolume sends back exactly the device_info the program returned, then a minimal one', async () => {
    const { c, record } = echo({ FIXTURE_DEVICE: '/dev/sdb' });
    const props = c.normalise(CINDER);
    const dev = await c.connectVolume(props);
    const r = await c.disconnectVolume(props, dev, { force: true });
    expect(r.errors).toEqual([]);
    expect(r.removed[0]).toContain('/dev/sdb');
    const calls = await readRecord(record);
    const returned = { type: 'block', path: '/dev/sdb', scsi_wwn: '36001405deadbeef', multipath_id: null, vendor: { session: 7 }, request: calls[0]!.request };
    expect(calls[1]!.request).toEqual({
      version: 1,
      operation: 'disconnect_volume',
      protocol: 'iscsi',
      connection_properties: DATA,
      device_info: returned,
      force: true,
      ignore_errors: false,
    });
    // Forgotten once disconnected; unknown devices get {type, path}, no device gets null.
    await c.disconnectVolume(props, dev, { ignoreErrors: true });
    await c.disconnectVolume(props, null);
    const [, , again, none] = await readRecord(record);
    expect(again!.request).toMatchObject({ device_info: { type: 'block', path: '/dev/sdb' }, force: false, ignore_errors: true });
    expect(Object.keys(again!.request.device_info as object)).toEqual(['type', 'path']);
    expect(none!.request.device_info).toBeNull();
  });

  it('disconnectVolume returns an ok:false reply as an error with ignoreErrors, and throws it without', async () => {
    const c = new ExternalConnector(prog('fails.sh'), 'iscsi');
    const props = c.normalise(CINDER);
    const r = await c.disconnectVolume(props, null, { ignoreErrors: true });
    expect(r.removed).toEqual([]);
    expect(r.errors[0]).toContain('VolumeDeviceNotFound');
    expect((await rejection(c.disconnectVolume(props, null))).code).toBe('CONNECTOR_FAILED');
    // A protocol violation is thrown even with ignoreErrors.
    const bad = new ExternalConnector(prog('not-json.sh'), 'iscsi');
    expect((await rejection(bad.disconnectVolume(props, null, { ignoreErrors: true }))).code).toBe('CONNECTOR_BAD_JSON');
  });

  it('getVolumePaths returns the reply and the kernel names of the paths that resolve', async () => {
    const paths = ['/dev/disk/by-path/ip-10.10.1.5:3260-iscsi-x-lun-1', '/dev/disk/by-path/dangling', '/dev/mapper/mpatha', '/dev/disk/by-path/absent'];
    const { c, record } = echo({ FIXTURE_PATHS: JSON.stringify(paths) });
    expect(await c.getVolumePaths(c.normalise(DATA))).toEqual({ paths, devices: ['dm-3', 'sdb', 'sdc', 'sdz'] });
    expect((await readRecord(record))[0]!.request).toEqual({ version: 1, operation: 'get_volume_paths', protocol: 'iscsi', connection_properties: DATA });
  });

  it('getAllAvailableVolumes gives one volume per path, with or without properties', async () => {
    const paths = ['/dev/disk/by-path/ip-10.10.2.5:3260-iscsi-x-lun-1', '/dev/disk/by-path/dangling'];
    const { c, record } = echo({ FIXTURE_PATHS: JSON.stringify(paths) });
    expect(await c.getAllAvailableVolumes()).toEqual([
      { protocol: 'iscsi', identity: {}, paths: [paths[0]], devices: ['sdb'] },
      { protocol: 'iscsi', identity: {}, paths: [paths[1]], devices: [] },
    ]);
    await c.getAllAvailableVolumes(c.normalise(CINDER));
    const [none, some] = await readRecord(record);
    expect(none!.request).toEqual({ version: 1, operation: 'get_all_available_volumes', protocol: 'iscsi', connection_properties: null });
    expect(some!.request.connection_properties).toEqual(DATA);
  });

  it('getSearchPath needs init(), which asks the program once', async () => {
    const { c, record } = echo();
    expect(() => c.getSearchPath()).toThrow(expect.objectContaining({ code: 'CONNECTOR_NOT_INITIALISED' }));
    expect(await c.init()).toBe(c);
    expect(c.getSearchPath()).toBe('/dev/disk/by-path');
    expect(c.getSearchPath()).toBe('/dev/disk/by-path');
    const calls = await readRecord(record);
    expect(calls.map((x) => x.request)).toEqual([{ version: 1, operation: 'get_search_path', protocol: 'iscsi', connection_properties: null }]);
  });

  it('sends an os-brick dict made from the properties when they did not come from its normalise', async () => {
    const { c, record } = echo();
    const builtIn = normalise('iscsi', { target_portal: '[fe80::1]:3260', target_iqn: IQN, target_lun: 3 }) as never;
    await c.getVolumePaths(builtIn);
    expect((await readRecord(record))[0]!.request.connection_properties).toEqual({ target_portal: '[fe80::1]:3260', target_iqn: IQN, target_lun: 3 });
  });
});

// ---------------------------------------------------------------------------------------------

const python3 = await which('python3');
const hostHasSessions = existsSync('/sys/class/iscsi_session') && (await readdir('/sys/class/iscsi_session')).length > 0;

// Each case starts a Python process: allow for a slow host.
describe.skipIf(!python3)('examples/iscsi-python (needs python3)', { timeout: 60_000 }, () => {
  /** Runs Python with the example directory importable; stdout parsed as JSON. */
  async function py(code: string, input = ''): Promise<unknown> {
    const r = await exec(['python3', '-c', code], { input, cwd: bin, env: { PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 20_000 });
    return JSON.parse(r.stdout);
  }

  /** Runs the script itself with raw stdin: the exit code and the one JSON document on stdout. */
  async function script(name: string, input: string): Promise<{ exitCode: number | null; reply: unknown }> {
    const r = await exec([prog(name)], { input, reject: false, env: { PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 20_000 });
    return { exitCode: r.exitCode, reply: JSON.parse(r.stdout) };
  }

  it('both files compile', async () => {
    const r = await exec(['python3', '-m', 'py_compile', join(EXAMPLES, 'connector.py'), join(EXAMPLES, 'connector-faulty.py')], {
      env: { PYTHONPYCACHEPREFIX: join(tmp, 'pycache') },
      reject: false,
    });
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('refuses bad connection properties with an ok:false reply before touching the host', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ target_portal: '10.0.0.1:3260', target_lun: 1 }, "target_iqn: missing: the target's IQN"],
      [{ target_iqn: IQN, target_lun: 1 }, 'target_portal: missing'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: IQN }, 'target_lun: missing'],
      [{ target_portal: 'fe80::1:3260', target_iqn: IQN, target_lun: 1 }, 'target_portal: "fe80::1:3260" looks like an IPv6 address without brackets'],
      [{ target_portal: '[fe80::zz]:3260', target_iqn: IQN, target_lun: 1 }, 'is not an IPv6 address'],
      [{ target_portal: '10.0.0.300:3260', target_iqn: IQN, target_lun: 1 }, 'is not an IPv4 address'],
      [{ target_portal: '10.0.0.1:70000', target_iqn: IQN, target_lun: 1 }, 'the port must be from 1 to 65535'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: '-T', target_lun: 1 }, 'target_iqn: "-T" is not an iSCSI name'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: IQN, target_lun: '1' }, 'target_lun: must be a whole number from 0 to 16383 (got "1")'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: IQN, target_lun: true }, 'target_lun: must be a whole number from 0 to 16383 (got true)'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: IQN, target_lun: 16384 }, 'target_lun: must be a whole number'],
      [{ target_portals: ['10.0.0.1:3260', '10.0.0.2:3260'], target_iqns: [IQN], target_luns: [1, 1] }, 'target_iqns: has 1 entries but target_portals has 2'],
      [{ target_portals: ['10.0.0.1:3260'], target_iqns: [IQN] }, 'target_luns: missing'],
      [{ target_portals: ['10.0.0.1:3260'], target_iqns: [IQN], target_luns: [2, 3] }, 'target_luns: must be a list with one LUN per portal (1)'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: IQN, target_lun: 1, auth_method: 'MD5' }, 'auth_method: must be "CHAP" or absent'],
      [{ target_portal: '10.0.0.1:3260', target_iqn: IQN, target_lun: 1, auth_method: 'CHAP', auth_username: 'u' }, 'auth_password: must be a non-empty string'],
    ];
    for (const name of ['connector.py', 'connector-faulty.py']) {
      for (const [data, text] of cases) {
        const err = await rejection(runConnectorProgram(prog(name), buildRequest('connect_volume', 'iscsi', { connection_properties: data })));
        expect(err.code, `${name} ${JSON.stringify(data)}: ${err.message}`).toBe('CONNECTOR_FAILED');
        expect(err.details).toMatchObject({ type: 'InvalidConnectionProperties' });
        expect(err.message).toContain(text);
      }
    }
    const disconnect = await rejection(runConnectorProgram(prog('connector.py'), buildRequest('disconnect_volume', 'iscsi', { connection_properties: { target_portal: '10.0.0.1' } })));
    expect(disconnect.message).toContain('target_iqn: missing');
  });

  it('answers a bad request with an ok:false reply and exit 0, never a traceback on stdout', async () => {
    const cases: Array<[string, string, string]> = [
      ['not json', 'BadRequest', 'stdin is not one JSON document'],
      ['[1, 2]', 'BadRequest', 'must be a JSON object'],
      ['{"version": 2, "operation": "get_search_path", "protocol": "iscsi"}', 'UnsupportedProtocolVersion', 'protocol version 1'],
      ['{"version": true, "operation": "get_search_path", "protocol": "iscsi"}', 'UnsupportedProtocolVersion', 'protocol version 1'],
      ['{"version": 1, "operation": "attach", "protocol": "iscsi"}', 'UnknownOperation', 'operation: must be one of'],
      ['{"version": 1, "operation": "get_search_path", "protocol": "nvmeof"}', 'UnsupportedProtocol', 'iscsi only'],
      ['{"version": 1, "operation": "get_volume_paths", "protocol": "iscsi", "connection_properties": null}', 'BadRequest', 'connection_properties: must be an object'],
      ['{"version": 1, "operation": "connect_volume", "protocol": "iscsi", "connection_properties": {"target_portal": "10.0.0.1", "target_iqn": "iqn.2010-10.org.example:x", "target_lun": 0}, "multipath": "yes"}', 'BadRequest', 'multipath: must be true or false'],
    ];
    for (const [input, type, text] of cases) {
      const { exitCode, reply } = await script('connector.py', input);
      expect(exitCode).toBe(0);
      expect(reply).toMatchObject({ version: 1, ok: false, error: { type } });
      expect((reply as { error: { message: string } }).error.message).toContain(text);
      // The reply fits the protocol (parseReply turns it into CONNECTOR_FAILED, not BAD_REPLY).
      expect(expectThrown(() => parseReply('get_search_path', JSON.stringify(reply)), 'CONNECTOR_FAILED').message).toContain(type);
    }
  });

  it('builds the by-path names udev makes, as properties.ts does (IPv6 without brackets, LUN >= 256 in hex)', async () => {
    const paths: Array<[string, string, number]> = [
      ['10.10.1.5:3260', IQN, 1],
      ['10.10.1.5', IQN, 0],
      ['[fe80::1]:3260', IQN, 300],
      ['[2001:db8::5]', 'iqn.2026-11.io.brick-lab:lab.vol2', 16383],
      ['target.example.org:3261', IQN, 255],
      ['10.10.2.5:3260', IQN, 256],
    ];
    const got = (await py(
      'import json, sys, connector\n' +
        'ps = json.load(sys.stdin)\n' +
        'print(json.dumps([connector.by_path_name(connector.Target(connector.parse_portal(p, "x"), i, l)) for p, i, l in ps]))',
      JSON.stringify(paths),
    )) as string[];
    const want = paths.map(([p, iqn, lun]) => {
      const n = normalise('iscsi', { target_portal: p, target_iqn: iqn, target_lun: lun }) as { paths: Array<{ portal: string; iqn: string; lun: number }> };
      return byPathName(n.paths[0]!);
    });
    expect(got).toEqual(want);
    expect(got[2]).toBe(`ip-fe80::1:3260-iscsi-${IQN}-lun-0x012c000000000000`);
    expect(got[1]).toBe(`ip-10.10.1.5:3260-iscsi-${IQN}-lun-0`);
  });

  it('get_volume_paths lists the by-path links that exist (both portals with the plural keys); get_all_available_volumes every iSCSI link', async () => {
    const dir = join(tmp, 'by-path');
    await mkdir(dir);
    await writeFile(join(tmp, 'sdk'), '');
    await symlink('../sdk', join(dir, `ip-fe80::1:3260-iscsi-${IQN}-lun-0x012c000000000000`));
    await symlink('../sdk', join(dir, `ip-10.10.1.5:3260-iscsi-${IQN}-lun-300`));
    await symlink('../sdk', join(dir, 'pci-0000:00:05.0-scsi-0:0:0:0'));
    await symlink('../nothing', join(dir, `ip-10.10.2.5:3260-iscsi-${IQN}-lun-0x012c000000000000`));
    const data = { target_portals: ['[fe80::1]:3260', '10.10.2.5:3260'], target_iqns: [IQN, IQN], target_luns: [300, 300], target_portal: '10.10.9.9:3260', target_iqn: IQN, target_lun: 9 };
    const run = (op: string, props: unknown): Promise<unknown> =>
      py(
        `import json, sys, connector\nconnector.BY_PATH = ${JSON.stringify(dir)}\nprint(json.dumps(connector.handle(json.load(sys.stdin))))`,
        JSON.stringify({ version: 1, operation: op, protocol: 'iscsi', connection_properties: props }),
      );
    expect(await run('get_volume_paths', data)).toEqual([join(dir, `ip-fe80::1:3260-iscsi-${IQN}-lun-0x012c000000000000`)]);
    expect(await run('get_all_available_volumes', null)).toEqual([join(dir, `ip-10.10.1.5:3260-iscsi-${IQN}-lun-300`), join(dir, `ip-fe80::1:3260-iscsi-${IQN}-lun-0x012c000000000000`)]);
  });

  it('reads sessions, their SCSI host and the LUNs under them from sysfs (a copy of its shape)', async () => {
    // As a 6.1 guest has it: the class entries are links into /sys/devices, the session's
    // "device" link leads to .../hostH/sessionN, connections are named connectionN:0.
    const sys = join(tmp, 'sys');
    const session = async (sid: number, host: number, iqn: string, address: string, luns: Array<[number, string]>): Promise<void> => {
      const dev = `devices/platform/host${host}/session${sid}`;
      await mkdir(join(sys, dev, `iscsi_session/session${sid}`), { recursive: true });
      await writeFile(join(sys, dev, `iscsi_session/session${sid}/targetname`), `${iqn}\n`);
      await symlink(`../../../session${sid}`, join(sys, dev, `iscsi_session/session${sid}/device`));
      await mkdir(join(sys, 'class/iscsi_session'), { recursive: true });
      await symlink(`../../${dev}/iscsi_session/session${sid}`, join(sys, `class/iscsi_session/session${sid}`));
      const conn = `${dev}/connection${sid}:0/iscsi_connection/connection${sid}:0`;
      await mkdir(join(sys, conn), { recursive: true });
      await writeFile(join(sys, conn, 'persistent_address'), `${address}\n`);
      await writeFile(join(sys, conn, 'persistent_port'), '3260\n');
      await mkdir(join(sys, 'class/iscsi_connection'), { recursive: true });
      await symlink(`../../${conn}`, join(sys, `class/iscsi_connection/connection${sid}:0`));
      for (const [lun, block] of luns) {
        await mkdir(join(sys, dev, `target${host}:0:0/${host}:0:0:${lun}/block/${block}`), { recursive: true });
        await mkdir(join(sys, 'block', block, 'device'), { recursive: true });
        await writeFile(join(sys, 'block', block, 'device/wwid'), `naa.6001405ABCDEF${lun}\n`);
      }
    };
    await session(1, 3, IQN, '10.10.1.5', [[1, 'sdb'], [300, 'sdd']]);
    await session(2, 4, IQN, 'fd00::5', [[1, 'sdc']]);
    const got = await py(
      'import json, connector as c\n' +
        `c.SYS = ${JSON.stringify(sys)}\n` +
        `ts = c.targets({"target_portals": ["10.10.1.5:3260", "[fd00::5]:3260", "10.10.2.5:3260"], "target_iqns": [${JSON.stringify(IQN)}] * 3, "target_lun": 1})\n` +
        'print(json.dumps({\n' +
        '  "sessions": [list(s) for s in c.sessions()],\n' +
        '  "for": [[s.sid for s in c.sessions_for(t)] for t in ts],\n' +
        '  "luns": [[list(h) for h, _ in c.luns_under(sid)] for sid in (1, 2)],\n' +
        '  "devices": [c.device_under(1, 1), c.device_under(1, 300), c.device_under(2, 1), c.device_under(1, 2)],\n' +
        '  "wwn": [c.scsi_wwn(c.read(c.SYS + "/block/sdb/device/wwid")), c.scsi_wwn("eui.0123456789ABCDEF"), c.scsi_wwn(None)],\n' +
        '}))',
    );
    expect(got).toEqual({
      sessions: [
        [1, IQN, '10.10.1.5', 3260, 3],
        [2, IQN, 'fd00::5', 3260, 4],
      ],
      for: [[1], [2], []],
      luns: [
        [
          [3, 0, 0, 1],
          [3, 0, 0, 300],
        ],
        [[4, 0, 0, 1]],
      ],
      devices: ['sdb', 'sdd', 'sdc', null],
      wwn: ['36001405abcdef1', '20123456789abcdef', null],
    });
  });

  it('drives the real script through ExternalConnector for the calls that only read the host', async () => {
    const c = await new ExternalConnector(prog('connector.py'), 'iscsi').init();
    expect(c.getSearchPath()).toBe('/dev/disk/by-path');
  });

  describe('with a fake iscsiadm on PATH', () => {
    let fakeBin: string;
    let calls: string;

    beforeAll(async () => {
      fakeBin = join(tmp, 'fake-bin');
      calls = join(tmp, 'iscsiadm-calls');
      await mkdir(fakeBin);
      // Records its arguments, one call per line; "-m node -T X -p Y" alone finds no record (21).
      await writeFile(
        join(fakeBin, 'iscsiadm'),
        `#!/bin/sh\necho "$*" >> ${JSON.stringify(calls)}\n[ "$#" -eq 6 ] && [ "$1 $2" = "-m node" ] && exit 21\nexit 0\n`,
      );
      await chmod(join(fakeBin, 'iscsiadm'), 0o755);
    });

    async function iscsiadmCalls(): Promise<string[]> {
      const text = existsSync(calls) ? await readFile(calls, 'utf8') : '';
      await rm(calls, { force: true });
      return text.split('\n').filter(Boolean);
    }

    const PATHENV = (): Record<string, string> => ({ PATH: `${fakeBin}:${process.env.PATH ?? '/usr/bin:/bin'}`, PYTHONDONTWRITEBYTECODE: '1' });
    const data = { target_portals: ['10.10.1.5:3260', '[fe80::1]:3260'], target_iqns: [IQN, IQN], target_luns: [1, 1] };

    it('makes the node record with manual scans and CHAP, portals in iscsiadm form', async () => {
      await rm(calls, { force: true });
      const r = await exec(
        ['python3', '-c', `import connector\nt = connector.targets(${JSON.stringify(data)})[1]\nconnector.ensure_node(t, {"auth_username": "u", "auth_password": "secret-XYZ"})`],
        { cwd: bin, env: PATHENV(), reject: false },
      );
      expect(r.exitCode, r.stderr).toBe(0);
      const node = `-m node -T ${IQN} -p [fe80::1]:3260`;
      expect(await iscsiadmCalls()).toEqual([
        node,
        `${node} --op new`,
        `${node} --op update -n node.session.scan -v manual`,
        `${node} --op update -n node.session.auth.authmethod -v CHAP`,
        `${node} --op update -n node.session.auth.username -v u`,
        `${node} --op update -n node.session.auth.password -v secret-XYZ`,
      ]);
      expect(r.stderr).not.toContain('secret-XYZ');
    });

    // On a host with iSCSI sessions of its own the script would look at them: not this test's business.
    it.skipIf(hostHasSessions)('disconnect deletes the node record of every portal without a session; the faulty one leaves them', async () => {
      const request = buildRequest('disconnect_volume', 'iscsi', { connection_properties: data });
      await rm(calls, { force: true });
      expect(await runConnectorProgram(prog('connector.py'), request, { env: PATHENV() })).toBeNull();
      expect(await iscsiadmCalls()).toEqual([`-m node -T ${IQN} -p 10.10.1.5:3260 --op delete`, `-m node -T ${IQN} -p [fe80::1]:3260 --op delete`]);
      expect(await runConnectorProgram(prog('connector-faulty.py'), request, { env: PATHENV() })).toBeNull();
      expect(await iscsiadmCalls()).toEqual([]);
    });
  });
});

// ---------------------------------------------------------------------------------------------

describe('docs/connector-protocol.md', () => {
  const doc = (): Promise<string> => readFile(join(ROOT, 'docs/connector-protocol.md'), 'utf8');

  /** The ```json block that follows each `<!-- NAME -->` marker. */
  function blocks(text: string, marker: RegExp): Array<{ name: string; json: unknown }> {
    const out: Array<{ name: string; json: unknown }> = [];
    const re = new RegExp(`<!-- (${marker.source}) -->\\s*\`\`\`json\\n([\\s\\S]*?)\\n\`\`\``, 'g');
    for (const m of text.matchAll(re)) out.push({ name: m[1]!, json: JSON.parse(m[2]!) });
    return out;
  }

  it('prints the schemas exactly as exported', async () => {
    const found = blocks(await doc(), /schema: [A-Z_]+/);
    expect(found.map((b) => b.name)).toEqual(['schema: REQUEST_SCHEMA', 'schema: REPLY_SCHEMA']);
    expect(found[0]!.json).toEqual(REQUEST_SCHEMA);
    expect(found[1]!.json).toEqual(REPLY_SCHEMA);
  });

  it('has a request and a reply example for every operation, each valid', async () => {
    const text = await doc();
    const requests = blocks(text, /example: request [a-z_]+/);
    const replies = blocks(text, /example: reply [a-z_]+/);
    expect(requests.map((b) => b.name.split(' ').pop())).toEqual([...OPERATIONS]);
    expect(replies.map((b) => b.name.split(' ').pop())).toEqual([...OPERATIONS]);
    for (const r of requests) expect(validateRequest(r.json).operation).toBe(r.name.split(' ').pop());
    for (const r of replies) parseReply(r.name.split(' ').pop() as Operation, JSON.stringify(r.json));
    const failure = blocks(text, /example: error reply/);
    expect(failure).toHaveLength(1);
    expectThrown(() => parseReply('connect_volume', JSON.stringify(failure[0]!.json)), 'CONNECTOR_FAILED');
  });

  it('names every error code brick-lab reports', async () => {
    const text = await doc();
    for (const code of ['CONNECTOR_NOT_FOUND', 'CONNECTOR_NOT_EXECUTABLE', 'CONNECTOR_TIMEOUT', 'CONNECTOR_CRASHED', 'CONNECTOR_BAD_JSON', 'CONNECTOR_BAD_REPLY', 'CONNECTOR_FAILED']) {
      expect(text).toContain(`\`${code}\``);
    }
  });
});

function expectThrown(fn: () => unknown, code: string): BrickError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) throw new Error(`expected ${code}, but nothing was thrown`);
  expect(caught).toBeInstanceOf(BrickError);
  expect((caught as BrickError).code, (caught as Error).message).toBe(code);
  return caught as BrickError;
}
