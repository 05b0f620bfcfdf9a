import { describe, refuse, strangeCharacters } from '../volume/fields.js';
import type { LocalProperties } from '../volume/properties.js';
import { asPayload, attachmentKeys, need, type AttachmentKeys, type EncodeOptions } from './payload.js';

/**
 * The local codec: os-brick's LOCAL connector takes a block device already on the host, named by
 * device_path. Pure: nothing here touches the host.
 */

export type LocalConnectionData = Partial<AttachmentKeys> & {
  device_path: string;
};

export function decode(data: unknown): LocalProperties {
  const d = asPayload(data, 'data', 'local connection properties (device_path)');
  const p = need(d, 'device_path', 'the absolute path of the block device, under /dev');
  if (typeof p !== 'string' || p === '') refuse('device_path', `must be an absolute path under /dev (got ${describe(p)})`);
  if (!p.startsWith('/')) refuse('device_path', `${JSON.stringify(p)} is relative: give an absolute path under /dev`);
  // What udev puts in /dev names: letters, digits and . _ - : + @ , = and its \x20-style escapes.
  const odd = strangeCharacters(p, /[A-Za-z0-9/._:+@,=\\-]/);
  if (odd) refuse('device_path', `${describe(p)} contains ${odd}, which no name under /dev holds (udev escapes others as \\xNN)`);
  const segments = p.split('/').slice(1);
  if (segments.includes('..')) refuse('device_path', `${JSON.stringify(p)} contains a '..' segment: give the path itself, under /dev`);
  if (segments[0] !== 'dev' || segments.length < 2) refuse('device_path', `${JSON.stringify(p)} is not under /dev`);
  if (segments.some((s) => s === '' || s === '.')) refuse('device_path', `${JSON.stringify(p)} is not a plain path: no empty or '.' segments, no trailing '/'`);
  return { protocol: 'local', devicePath: p };
}

export function encode(p: LocalProperties, opts: EncodeOptions = {}): LocalConnectionData {
  return { device_path: p.devicePath, ...attachmentKeys(opts) };
}
