import { describe, expect, it } from 'vitest';
import { recordingHostFs, replayHostFs } from '../../src/system/hostfs-record.js';
import { loadInventoryFixture } from './inventory-fixtures.js';

describe('HostFs writes', () => {
  const fx = loadInventoryFixture('inventory-attached.json');

  it('a replay keeps writes in order and reads stay as recorded', async () => {
    const fs = replayHostFs(fx.recording);
    await fs.write('/sys/class/scsi_host/host6/scan', '- - 1');
    await fs.write('/sys/block/sda/device/delete', '1');
    expect(fs.written).toEqual([
      { path: '/sys/class/scsi_host/host6/scan', text: '- - 1' },
      { path: '/sys/block/sda/device/delete', text: '1' },
    ]);
    expect(fs.list('/sys/block')).toEqual(fx.recording.list['/sys/block']);
  });

  it('a recording keeps writes only when there were some, and passes them on', async () => {
    const inner = replayHostFs(fx.recording);
    const { fs, recording } = recordingHostFs(inner);
    fs.list('/sys/block');
    expect(recording.writes).toBeUndefined();
    await fs.write('/sys/bus/pseudo/drivers/scsi_debug/add_host', '1');
    expect(recording.writes).toEqual([{ path: '/sys/bus/pseudo/drivers/scsi_debug/add_host', text: '1' }]);
    expect(inner.written).toEqual(recording.writes);
  });
});
