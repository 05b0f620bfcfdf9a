/**
 * Bad requests to the node agent, generated: every route of both roles, with wrong types, missing
 * and unknown fields, names that are almost right (one character a field cannot hold: a shell
 * metacharacter, a NUL byte, a unicode look-alike), numbers out of range, bodies that are not
 * objects, deeply nested, too large or not JSON, and bad or missing tokens.
 *
 * Every request made here is wrong in one known way, and says which field it is about, so a test
 * can demand a coded 4xx that names it. Used by the unit fuzz test (inject, 10,000 requests) and
 * the live e2e run against a lab's nodes.
 */
import fc from 'fast-check';

export type Role = 'compute' | 'target';
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface BadRequest {
  role: Role;
  method: Method;
  url: string;
  headers: Record<string, string>;
  /** The raw body text, when there is one. */
  payload?: string;
  /** What is wrong, for the failure message. */
  why: string;
  /** The field the refusal must name (as the agent names fields: dotted, [i] for items); null: any. */
  field: string | null;
  /** The statuses this kind of wrong may get: 400 most, 401 for tokens, 404 unknown routes, 413, 415. */
  statuses: number[];
}

type Body = Record<string, unknown>;

/** Characters no IQN, NQN, portal, volume, network or connector name, or /dev path can hold. */
const STRANGE = [
  ';', '|', '&', '$', '`', '(', ')', '<', '>', ' ', '\n', '\t', '\r', '\u0000', "'", '"', '*', '?', '~', '{', '}', '!', '#', '^',
  '\u0456' /* Cyrillic і */, '\u0131' /* dotless ı */, '\uff51' /* fullwidth ｑ */, '\u2010' /* hyphen ‐ */, '\u00a0' /* nbsp */,
  '\u200b' /* zero width space */, '\u202e' /* right-to-left override */, '\u{1f600}', '\u00e9', '\u0430' /* Cyrillic а */,
];
const FOR = {
  iqn: [...STRANGE, 'A', 'Q', '/', '\\', ',', '=', '@', '%', '[', '+'],
  nqn: [...STRANGE, '/', '\\', ',', '=', '@', '%', '[', '+'],
  portal: [...STRANGE, '/', '\\', ',', '=', '@', '+'],
  name: [...STRANGE, 'A', '.', '_', ':', '/', '\\', ',', '=', '@', '%', '+'],
  connector: [...STRANGE, 'A', ':', '/', '\\', ',', '=', '@', '%', '+'],
  path: [...STRANGE],
};

const IQN = 'iqn.2026-11.io.brick-lab:unit.vol-1';
const NQN = 'nqn.2026-11.io.brick-lab:unit.vol-1';
const UUID = '6f1c1a52-8c1b-4a55-9d7e-2f0d3b7a8c41';

/** A valid value with one to three copies of a character it cannot hold put in somewhere. */
function almost(valid: string, chars: string[]): fc.Arbitrary<string> {
  return fc
    .tuple(fc.nat({ max: valid.length }), fc.constantFrom(...chars), fc.integer({ min: 1, max: 3 }))
    .map(([i, c, n]) => valid.slice(0, i) + c.repeat(n) + valid.slice(i));
}

/**
 * Any JSON value without a "__proto__" or "constructor" key at any depth: the agent refuses those
 * as a bad body before it looks at fields (a case of its own below), so a value meant to test one
 * unknown field must not carry one (a live run's seed 983363825 nested a "__proto__" key in one).
 */
const plainJson = fc.jsonValue().filter((v) => !/"(__proto__|constructor)":/.test(JSON.stringify(v)));

const notString = fc.constantFrom<unknown>(5, -1, 1.5, true, false, null, [], {}, ['x'], { a: 1 });
const notBoolean = fc.constantFrom<unknown>('true', 'false', 1, 0, null, 'yes', [], {}, [true]);
const notObject = fc.constantFrom<unknown>('$(id)', '`reboot`', 5, true, null, [], ['x'], [{}]);
function badInt(min: number, max: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constantFrom<unknown>(min - 1, max + 1, 1.5, String(min), `${min};id`, null, true, [], {}, -1e12, 1e15),
    fc.integer({ min: max + 1, max: max + 1_000_000 }),
    fc.integer({ min: min - 1_000_000, max: min - 1 }),
  );
}

const bad = {
  iqn: fc.oneof(
    almost(IQN, FOR.iqn),
    fc.constantFrom<unknown>('iqn.2026-13.io.x:y', 'iqn.2026-11.lab:x', 'IQN.2026-11.io.x:y', 'iqn.26-11.io.x:y', 'iqn.2026-11.:x', 'eui.0123', '', `${IQN}${'a'.repeat(200)}`),
    notString,
  ),
  wwpn: fc.oneof(fc.constantFrom<unknown>('0x20005254004c0101', '20:00:52:54:00:4c:01:01', '20005254004c010', '20005254004c01011', 'g0005254004c0101', '20005254 04c0101', ''), notString),
  nqn: fc.oneof(almost(NQN, FOR.nqn), fc.constantFrom<unknown>('nqn.', 'NQN.x', 'nvme.x', '', `nqn.${'a'.repeat(220)}`), notString),
  portal: fc.oneof(
    almost('10.10.1.10:3260', FOR.portal),
    fc.constantFrom<unknown>('10.10.1.10:0', '10.10.1.10:65536', '10.10.1.256:3260', 'fe80::1:3260', ':3260', '10.10.1.10:', '[zz]:3260', '[fe80::1]3260', '10.1:3260x', ''),
    notString,
  ),
  lun: fc.oneof(badInt(0, 16383), fc.constantFrom<unknown>('0', ' 1', '0x1')),
  uuid: fc.oneof(almost(UUID, [...STRANGE, 'g', 'G', 'z']), fc.constantFrom<unknown>(UUID.slice(1), `${UUID}0`, UUID.replace(/-/g, '_'), ''), notString),
  volumeName: fc.oneof(almost('vol-1', FOR.name), fc.constantFrom<unknown>('', '-x', '..', 'a'.repeat(41)), notString),
  connectorName: fc.oneof(almost('conn-1', FOR.connector), fc.constantFrom('..', '.hidden', '-x', '_x', 'a'.repeat(65))),
  networkName: fc.oneof(almost('path-a', FOR.name), fc.constantFrom('', 'a'.repeat(16))),
  devicePath: fc.oneof(
    almost('/dev/sdz', FOR.path).filter((p) => p.startsWith('/dev/') || !p.startsWith('/')),
    fc.constantFrom<unknown>('dev/sda', '/dev/../etc/passwd', '/etc/passwd', '/dev/', '/dev//sda', '/dev/./sda', '/dev', '', '/dev/sda/'),
    notString,
  ),
};

/** A mutation of one field of a valid body. */
interface FieldRule {
  field: string;
  set: (body: Body, v: unknown) => Body;
  value: fc.Arbitrary<unknown>;
}

const top = (name: string, value: fc.Arbitrary<unknown>): FieldRule => ({ field: name, set: (b, v) => ({ ...b, [name]: v }), value });
/** A field of the connection properties nested under `properties` (connect, disconnect, orphans). */
const nested = (key: string, name: string, value: fc.Arbitrary<unknown>): FieldRule => ({
  field: name,
  set: (b, v) => ({ ...b, [key]: { ...(b[key] as Body), [name]: v } }),
  value,
});

interface Props {
  protocol: 'iscsi' | 'nvmeof' | 'local';
  valid: Body;
  rules: Array<{ field: string; value: fc.Arbitrary<unknown> }>;
}

const PROPS: Props[] = [
  {
    protocol: 'iscsi',
    valid: { target_portal: '10.10.1.10:3260', target_iqn: IQN, target_lun: 0 },
    rules: [
      { field: 'target_portal', value: bad.portal },
      { field: 'target_iqn', value: bad.iqn },
      { field: 'target_lun', value: bad.lun },
      { field: 'auth_method', value: fc.constantFrom<unknown>('chap', 'NONE', 'CHAP;id', 5) },
    ],
  },
  {
    protocol: 'nvmeof',
    valid: { target_nqn: NQN, portals: [['10.10.1.10', 4420, 'tcp']], vol_uuid: UUID },
    rules: [
      { field: 'target_nqn', value: bad.nqn },
      // null is how Cinder says "no UUID" (os-brick reads it with .get): absent, not wrong.
      { field: 'vol_uuid', value: bad.uuid.filter((v) => v !== null) },
      {
        field: 'portals',
        value: fc.oneof(
          fc.constantFrom<unknown>('10.10.1.10', [], [['10.10.1.10']], [['10.10.1.10', 0, 'tcp']], [['10.10.1.10', 4420, 'rdma']], [['10.10.1.10', 4420, 'tcp', 'x']], [5], null),
          almost('10.10.1.10', FOR.portal).map((a) => [[a, 4420, 'tcp']]),
        ),
      },
      { field: 'ns_id', value: fc.constantFrom<unknown>(0, -1, 4294967296, '1.5', 'x', true, []) },
    ],
  },
  { protocol: 'local', valid: { device_path: '/dev/sdz' }, rules: [{ field: 'device_path', value: bad.devicePath }] },
];

interface Route {
  role: Role;
  method: Method;
  /** The path with its parameters filled in by valid values. */
  path: string;
  /** A valid body for the routes that take one (never sent as it is). */
  valid?: Body;
  /** True when the body refuses unknown fields (additionalProperties: false). */
  closed?: boolean;
  required?: string[];
  rules?: FieldRule[];
  /** Path parameters and how to break them: the route's path with the bad value in. */
  params?: Array<{ field: string; url: (v: string) => string; value: fc.Arbitrary<string> }>;
  /** Query parameters the route knows, and bad values for them. */
  query?: Array<{ field: string; value: fc.Arbitrary<string> }>;
}

const enc = encodeURIComponent;
const protocolParam = (path: (p: string) => string) => ({
  field: 'protocol',
  url: (v: string) => path(enc(v)),
  value: fc.oneof(fc.constantFrom('scaleio', 'ISCSI', 'rbd', 'nvme', 'iscsi ', 'local;id'), almost('iscsi', FOR.name)),
});
const connectorQuery = { field: 'connector', value: bad.connectorName };

function propsRoutes(): Route[] {
  const out: Route[] = [];
  for (const p of PROPS) {
    const at = (what: string) => (proto: string) => `/v1/connectors/${proto}/${what}`;
    const asBody = p.rules.map((r) => top(r.field, r.value));
    out.push({ role: 'compute', method: 'POST', path: at('volume-paths')(p.protocol), valid: p.valid, rules: asBody, params: [protocolParam(at('volume-paths'))], query: [connectorQuery] });
    out.push({ role: 'compute', method: 'POST', path: at('available-volumes')(p.protocol), valid: p.valid, rules: asBody, params: [protocolParam(at('available-volumes'))], query: [connectorQuery] });
    out.push({
      role: 'compute', method: 'POST', path: at('volume-paths-batch')(p.protocol), valid: { volumes: [p.valid, p.valid] }, closed: true, required: ['volumes'],
      rules: [
        top('volumes', fc.oneof(notObject.filter((v) => !Array.isArray(v) || v.length > 0), fc.constant(Array.from({ length: 4097 }, () => ({}))))),
        ...p.rules.map((r) => ({ field: r.field, set: (b: Body, v: unknown) => ({ volumes: [p.valid, { ...p.valid, [r.field]: v }] }), value: r.value })),
      ],
      params: [protocolParam(at('volume-paths-batch'))],
    });
    const propsRules = p.rules.map((r) => nested('properties', r.field, r.value));
    out.push({
      role: 'compute', method: 'POST', path: at('connect')(p.protocol), valid: { properties: p.valid, multipath: false }, closed: true, required: ['properties'],
      rules: [...propsRules, top('multipath', notBoolean), top('properties', notObject)], params: [protocolParam(at('connect'))], query: [connectorQuery],
    });
    out.push({
      role: 'compute', method: 'POST', path: at('disconnect')(p.protocol), valid: { properties: p.valid, force: false }, closed: true, required: ['properties'],
      rules: [...propsRules, top('force', notBoolean), top('ignoreErrors', notBoolean), top('deviceInfo', fc.constantFrom<unknown>('x', 5, [], true)), top('properties', notObject)],
      params: [protocolParam(at('disconnect'))], query: [connectorQuery],
    });
    out.push({
      role: 'compute', method: 'POST', path: '/v1/inventory/orphans', valid: { protocol: p.protocol, properties: p.valid }, closed: true, required: ['protocol', 'properties'],
      rules: [
        ...propsRules,
        top('protocol', fc.constantFrom<unknown>('rbd', 'ISCSI', '', 5, null, 'iscsi;id')),
        top('wwid', notString),
        top('devices', fc.constantFrom<unknown>('sda', ['sd a'], ['/dev/../x'], [5], ['sda;id'], ['SDA'])),
        top('baselineId', fc.constantFrom<unknown>('', 'a b', 'x'.repeat(65), '../x', 5, 'a;b')),
        top('stillAttached', fc.constantFrom<unknown>('x', [5], [{ protocol: 'rbd', properties: {} }], [{ properties: {} }])),
      ],
    });
  }
  return out;
}

const ROUTES: Route[] = [
  // Every node.
  { role: 'compute', method: 'GET', path: '/v1/health', query: [{ field: 'waitReadyMs', value: fc.constantFrom('-1', 'abc', '60001', '1.5', '1e9', '1;id') }] },
  { role: 'target', method: 'GET', path: '/v1/health', query: [{ field: 'waitReadyMs', value: fc.constantFrom('-1', 'abc', '60001', '1.5') }] },
  ...(['compute', 'target'] as const).flatMap((role): Route[] => [
    {
      role, method: 'POST', path: '/v1/exec', valid: { argv: ['true'] }, closed: true, required: ['argv'],
      rules: [
        top('argv', fc.constantFrom<unknown>([], 'true', [''], [1], null, {}, [['x']], 'rm -rf /')),
        top('timeoutMs', badInt(1, 3_600_000)),
        top('input', notString.filter((v) => typeof v !== 'string')),
        top('env', fc.constantFrom<unknown>('x', [], { a: 1 }, { a: null }, 5)),
      ],
    },
    { role, method: 'POST', path: '/v1/node/reboot', valid: {}, closed: true, rules: [top('hard', notBoolean)] },
    {
      role, method: 'POST', path: '/v1/node/outage', valid: { seconds: 5 }, closed: true, required: ['seconds'],
      rules: [
        top('seconds', badInt(1, 3600)),
        top('networks', fc.oneof(fc.constantFrom<unknown>('path-a', [5], [''], Array.from({ length: 17 }, () => 'a'), null), bad.networkName.map((n) => [n]))),
      ],
    },
    { role, method: 'POST', path: '/v1/agent/restart' },
    { role, method: 'POST', path: '/v1/agent/memory', valid: {}, closed: true, rules: [top('collect', notBoolean)] },
    { role, method: 'DELETE', path: '/v1/node/outage' },
    { role, method: 'GET', path: '/v1/node/kernel-log', query: [{ field: 'since', value: fc.constantFrom('-1', 'abc', '1.5', '1e99', '1;id', '') }] },
  ]),

  // The compute role.
  { role: 'compute', method: 'POST', path: '/v1/local-disks' },
  { role: 'compute', method: 'GET', path: '/v1/local-disks' },
  {
    role: 'compute', method: 'DELETE', path: '/v1/local-disks/0',
    params: [{ field: 'host', url: (v) => `/v1/local-disks/${enc(v)}`, value: fc.constantFrom('-1', 'x', '1.5', '1;id', '0x1', '1e3x', '%00') }],
  },
  {
    role: 'compute', method: 'PUT', path: '/v1/connectors/programs/conn-1', valid: { content: 'IyEvYmluL3NoCg==', kind: 'program' }, closed: true, required: ['content', 'kind'],
    rules: [
      top('content', fc.constantFrom<unknown>('not base64!', 'aGk=;id', '$(id)', 5, null, [], 'aGk=\n')),
      top('kind', fc.constantFrom<unknown>('script', '', 5, null, 'PROGRAM', 'module;id')),
      top('executable', notBoolean),
      top('timeoutMs', badInt(1000, 3_600_000)),
    ],
    params: [{ field: 'name', url: (v) => `/v1/connectors/programs/${enc(v)}`, value: bad.connectorName }],
  },
  { role: 'compute', method: 'DELETE', path: '/v1/connectors/programs/conn-1', params: [{ field: 'name', url: (v) => `/v1/connectors/programs/${enc(v)}`, value: bad.connectorName }] },
  { role: 'compute', method: 'GET', path: '/v1/connectors/programs' },
  { role: 'compute', method: 'GET', path: '/v1/connectors' },
  { role: 'compute', method: 'GET', path: '/v1/connectors/properties', query: [{ field: 'multipath', value: fc.constantFrom('2', 'yes', 'maybe', '1;id', '') }] },
  {
    role: 'compute', method: 'GET', path: '/v1/connectors/iscsi/search-path',
    params: [protocolParam((p) => `/v1/connectors/${p}/search-path`)], query: [connectorQuery],
  },
  ...propsRoutes(),
  { role: 'compute', method: 'GET', path: '/v1/inventory', query: [{ field: 'record', value: fc.constantFrom('2', 'yes', 'true', '1;id', '') }] },
  { role: 'compute', method: 'POST', path: '/v1/inventory/diff', valid: { before: {} }, closed: true, required: ['before'], rules: [top('before', notObject)] },
  { role: 'compute', method: 'POST', path: '/v1/inventory/baselines' },
  {
    role: 'compute', method: 'POST', path: '/v1/inventory/host-check', valid: {}, closed: true,
    rules: [
      top('baselineId', fc.constantFrom<unknown>('', 'a b', 'x'.repeat(65), '../x', 5)),
      top('stillAttached', fc.constantFrom<unknown>('x', [5], [{ protocol: 'rbd', properties: {} }])),
      top('baseline', notObject),
    ],
  },

  // The target role.
  ...(['iscsi', 'nvmet', 'fc'] as const).map((kind): Route => ({
    role: 'target', method: 'POST', path: `/v1/targets/${kind}/volumes`, valid: { name: 'vol-1', sizeMiB: 8 }, closed: true, required: ['name', 'sizeMiB'],
    rules: [
      top('name', bad.volumeName),
      top('sizeMiB', badInt(1, 4096)),
      top('networks', fc.oneof(fc.constantFrom<unknown>('path-a', [], [5], ['path-z'], null), bad.networkName.map((n) => [n]))),
      ...(kind === 'fc'
        ? [
            top('lun', badInt(0, 255)),
            top('initiators', fc.oneof(fc.constantFrom<unknown>('x', [5], null), bad.wwpn.map((w) => ['20005254004c0101', w]))),
            top('backstore', fc.constantFrom<unknown>('nbd', '', 5, 'FILEIO')),
            top('unitSerial', bad.uuid),
          ]
        : kind === 'iscsi'
        ? [
            top('iqn', bad.iqn),
            top('lun', badInt(0, 16383)),
            top('initiators', fc.oneof(fc.constantFrom<unknown>('x', [5], null), bad.iqn.map((i) => [IQN, i]))),
            top('backstore', fc.constantFrom<unknown>('nbd', '', 5, 'FILEIO')),
            top('demoMode', notBoolean),
            top('chap', fc.constantFrom<unknown>('x', { username: 'u' }, { username: 'u', password: 'short' }, { username: 'u u', password: 'long-enough-secret' }, { username: 'u', password: 'long-enough-secret', x: 1 })),
            top('unitSerial', bad.uuid),
          ]
        : [
            top('nqn', bad.nqn),
            top('nsid', badInt(1, 1024)),
            top('hosts', fc.oneof(fc.constantFrom<unknown>('x', [5], null), bad.nqn.map((n) => [NQN, n]))),
            top('allowAnyHost', notBoolean),
            top('uuid', bad.uuid),
            top('nguid', fc.constantFrom<unknown>('x', 'G'.repeat(32), 'a'.repeat(31), 'A'.repeat(32), 5)),
            top('anaGroup', badInt(1, 128)),
          ]),
    ],
  })),
  { role: 'target', method: 'GET', path: '/v1/targets/volumes' },
  {
    role: 'target', method: 'GET', path: '/v1/targets/volumes/vol-1/signature',
    params: [{ field: 'name', url: (v) => `/v1/targets/volumes/${enc(v)}/signature`, value: bad.volumeName.filter((v): v is string => typeof v === 'string' && v !== '') }],
  },
  ...(['GET', 'DELETE'] as const).map((method): Route => ({
    role: 'target', method, path: '/v1/targets/volumes/vol-1', params: [{ field: 'name', url: (v) => `/v1/targets/volumes/${enc(v)}`, value: bad.volumeName.filter((v): v is string => typeof v === 'string' && v !== '') }],
  })),
  {
    role: 'target', method: 'POST', path: '/v1/targets/volumes/vol-1/unmap', valid: {}, closed: true,
    rules: [top('initiator', bad.iqn)],
    params: [{ field: 'name', url: (v) => `/v1/targets/volumes/${enc(v)}/unmap`, value: bad.volumeName.filter((v): v is string => typeof v === 'string' && v !== '') }],
  },
  {
    role: 'target', method: 'POST', path: '/v1/targets/volumes/vol-1/map', valid: { initiators: ['20005254004c0101'] }, closed: true, required: ['initiators'],
    rules: [top('initiators', fc.oneof(fc.constantFrom<unknown>('x', [5], null), bad.wwpn.map((w) => ['20005254004c0101', w])))],
    params: [{ field: 'name', url: (v) => `/v1/targets/volumes/${enc(v)}/map`, value: bad.volumeName.filter((v): v is string => typeof v === 'string' && v !== '') }],
  },
  {
    role: 'target', method: 'PUT', path: '/v1/targets/volumes/vol-1/signature', valid: { volume: 'vol-1', id: 'abc' }, closed: true, required: ['volume', 'id'],
    rules: [top('volume', bad.volumeName.filter((v) => v !== '' && v !== '-x' && v !== '..' && !(typeof v === 'string' && /^a+$/.test(v)))), top('id', fc.oneof(almost('abc', STRANGE), fc.constantFrom<unknown>('X', 'a'.repeat(65), 5)))],
  },
  {
    role: 'target', method: 'POST', path: '/v1/targets/networks/path-a', valid: { up: true }, closed: true, required: ['up'],
    rules: [top('up', notBoolean)],
    params: [{ field: 'network', url: (v) => `/v1/targets/networks/${enc(v)}`, value: bad.networkName.filter((v) => v !== '') }],
  },
  {
    role: 'target', method: 'POST', path: '/v1/targets/nvmet/ana', valid: { network: 'path-a', group: 1, state: 'optimized' }, closed: true, required: ['network', 'group', 'state'],
    rules: [top('network', bad.networkName), top('group', badInt(1, 128)), top('state', fc.constantFrom<unknown>('up', '', 5, 'OPTIMIZED', 'optimized;id'))],
  },
  { role: 'target', method: 'POST', path: '/v1/targets/restart' },
  { role: 'target', method: 'GET', path: '/v1/targets/leftovers' },
  { role: 'target', method: 'POST', path: '/v1/targets/cleanup' },
];

/** The routes this generator covers, as "METHOD /path/{param}" per role: checked against /openapi.json. */
export function coveredRoutes(): Array<{ role: Role; method: Method; path: string }> {
  return ROUTES.map((r) => ({ role: r.role, method: r.method, path: r.path }));
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function auth(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Every way a request of a route can be wrong, as arbitraries; `token` is the agent's. */
function badRequestsOf(r: Route, token: string): Array<fc.Arbitrary<BadRequest>> {
  const base = { role: r.role, method: r.method };
  const takesBody = r.method !== 'GET';
  const body = (b: unknown): string => JSON.stringify(b);
  const out: Array<fc.Arbitrary<BadRequest>> = [];
  const asBody = (why: string, field: string | null, payload: string, statuses = [400], headers: Record<string, string> = JSON_HEADERS): BadRequest => ({
    ...base, url: r.path, headers: { ...auth(token), ...headers }, payload, why, field, statuses,
  });

  // A bad or missing token: refused before anything else is looked at. /v1/health is open.
  if (r.path !== '/v1/health') {
    out.push(
      fc
        .oneof(
          fc.constant<Record<string, string>>({}),
          fc.constantFrom('Bearer', 'Bearer ', `Bearer ${token}x`, `Bearer ${token.slice(1)}`, `bearer ${token}`, `Basic ${token}`, `Bearer ${token.toUpperCase()}`, `Bearer  ${token}`).map((a) => ({ authorization: a })),
          fc.string({ unit: 'binary', maxLength: 80 }).map((s) => ({ authorization: `Bearer ${s.replace(/[^\x20-\x7e]/g, '?')}` })).filter((h) => h.authorization !== `Bearer ${token}`),
        )
        .map((h) => ({ ...base, url: r.path, headers: { ...h, ...(takesBody ? JSON_HEADERS : {}) }, ...(takesBody ? { payload: body(r.valid ?? {}) } : {}), why: 'bad token', field: null, statuses: [401] })),
    );
  }

  if (takesBody && !r.valid) {
    // A route that takes no body: any but {} is refused.
    out.push(fc.oneof(notObject, fc.constant({ a: 1 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue(), { minKeys: 1, maxKeys: 3 })).map((b) => asBody('a body where none is taken', 'body', body(b))));
  }
  if (r.valid) {
    const valid = r.valid;
    out.push(notObject.map((b) => asBody('a body that is not an object', 'body', body(b))));
    out.push(fc.constantFrom('{"a":', '{', '[1,', "{'a':1}", '{"a":1}}', 'nul', '\u0000', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}').map((t) => asBody('not JSON', 'body', t)));
    out.push(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml').map((ct) => asBody(`content-type ${ct}`, null, body(valid), [415], { 'content-type': ct })));
    // Deeply nested: a field that takes a scalar gets an object nested a few thousand deep.
    out.push(fc.integer({ min: 100, max: 5000 }).map((depth) => asBody(`nested ${depth} deep`, null, `{"zz":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`)));
    if (r.closed) {
      out.push(
        fc
          .tuple(fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('__proto_', '$(id)', 'a\u0000b', 'ＮＡＭＥ', 'nаme')), plainJson)
          .filter(([k]) => !(k in valid) && k !== '__proto__' && k !== 'constructor' && !(r.rules ?? []).some((x) => x.field === k))
          .map(([k, v]) => asBody('an unknown field', k, body({ ...valid, [k]: v }))),
      );
    }
    for (const req of r.required ?? []) {
      out.push(fc.constant(asBody(`${req} missing`, req, body(Object.fromEntries(Object.entries(valid).filter(([k]) => k !== req))))));
    }
    for (const rule of r.rules ?? []) {
      out.push(rule.value.map((v) => asBody(`${rule.field} = ${JSON.stringify(v)?.slice(0, 60)}`, rule.field, body(rule.set(valid, v)))));
    }
  }
  for (const p of r.params ?? []) {
    // "." and ".." are not path parameters: URL parsing takes them as steps up the path.
    out.push(p.value.filter((v) => v !== '.' && v !== '..').map((v) => ({ ...base, url: p.url(v), headers: { ...auth(token), ...(takesBody ? JSON_HEADERS : {}) }, ...(takesBody ? { payload: body(r.valid ?? {}) } : {}), why: `${p.field} = ${JSON.stringify(v)}`, field: p.field, statuses: [400] })));
  }
  // Query strings: an unknown parameter, or a known one with a bad value.
  const query = r.query ?? [];
  const withQuery = (q: string, why: string, field: string): BadRequest => ({
    ...base, url: `${r.path}?${q}`, headers: { ...auth(token), ...(takesBody ? JSON_HEADERS : {}) }, ...(takesBody ? { payload: body(r.valid ?? {}) } : {}), why, field, statuses: [400],
  });
  out.push(
    fc.constantFrom('zz', 'debug', 'record2', 'connector_', 'waitreadyms')
      .filter((k) => !query.some((q) => q.field === k))
      .map((k) => withQuery(`${k}=1`, `unknown query parameter ${k}`, k)),
  );
  for (const q of query) out.push(q.value.map((v) => withQuery(`${q.field}=${enc(v)}`, `${q.field} = ${JSON.stringify(v)}`, q.field)));
  // The body of a valid request is never sent as it is, so a route whose every request is fine
  // (a GET without parameters) gets only the token and query cases above.
  return out;
}

/** Routes nobody registered: a coded 404. */
const unknownRoute = fc
  .tuple(fc.constantFrom<Method>('GET', 'POST', 'PUT', 'DELETE'), fc.constantFrom('/v2/health', '/v1/healthz', '/v1/connectors/iscsi', '/v1/targets', '/v1/exec/x', '/', '/v1/../etc/passwd', '/v1/%00', '/v1/inventory/orphans/x'), fc.constantFrom<Role>('compute', 'target'))
  .map(([method, url, role]): BadRequest => ({ role, method, url, headers: {}, why: 'no such route', field: null, statuses: [401, 404] }));

/** Bad requests to both roles' agents. */
export function badRequests(token: string): fc.Arbitrary<BadRequest> {
  return fc.oneof(unknownRoute, ...ROUTES.flatMap((r) => badRequestsOf(r, token)));
}

/** One request too large for the agent (a body past its 8 MiB limit): sent a few times, not thousands. */
export function oversizeRequest(token: string, role: Role): BadRequest {
  const url = role === 'compute' ? '/v1/connectors/programs/big' : '/v1/targets/iscsi/volumes';
  const method = role === 'compute' ? 'PUT' : 'POST';
  return {
    role, method, url, headers: { ...auth(token), ...JSON_HEADERS },
    payload: JSON.stringify({ content: 'A'.repeat(9 * 1024 * 1024), kind: 'program' }),
    why: 'a 9 MiB body', field: 'body', statuses: [413],
  };
}
