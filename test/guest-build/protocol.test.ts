/** Pure helpers of lib/guest: the /init command-line builder and build.sh stage-line parsing. */
import { describe, expect, it } from 'vitest';
import { DHCP_BOUND_LINE, initCmdline } from '../../lib/guest/guest-protocol.js';
import { buildReferenceGuest, parseBuildStage, referenceGuestArtifacts } from '../../lib/guest/reference-guest.js';

describe('initCmdline', () => {
  it('renders the options /init reads', () => {
    expect(initCmdline({})).toBe('');
    expect(initCmdline({ rootdisk: '/dev/vda' })).toBe('nodevmm.rootdisk=/dev/vda');
    expect(initCmdline({ rootdisk: '/dev/vdb', then: 'poweroff' })).toBe('nodevmm.rootdisk=/dev/vdb nodevmm.then=poweroff');
    expect(initCmdline({ net: 'dhcp' })).toBe('nodevmm.net=dhcp');
    expect(initCmdline({ then: 'shell', net: 'dhcp' })).toBe('nodevmm.then=shell nodevmm.net=dhcp');
  });

  it('rejects a net mode /init does not know', () => {
    // @ts-expect-error: deliberately invalid mode
    expect(() => initCmdline({ net: 'static' })).toThrow(/net must be 'dhcp', got "static"/);
  });

  it('rejects a rootdisk that would break the command line', () => {
    expect(() => initCmdline({ rootdisk: '/dev/vda console=tty0' })).toThrow(/rootdisk must be a \/dev path/);
    expect(() => initCmdline({ rootdisk: 'vda' })).toThrow(/rootdisk/);
  });
});

describe('DHCP_BOUND_LINE', () => {
  it('matches the line the udhcpc event script prints, with or without a carriage return', () => {
    const console = 'udhcpc noise\r\nnodevmm-init: eth0 10.0.2.15/24 router 10.0.2.2 dns 10.0.2.3\r\n# ';
    const m = DHCP_BOUND_LINE.exec(console);
    expect(m?.slice(1)).toEqual(['eth0', '10.0.2.15', '24', '10.0.2.2', '10.0.2.3']);
    expect(DHCP_BOUND_LINE.exec('nodevmm-init: eth1 192.0.2.9/28 router none dns 10.0.0.1,10.0.0.2\n')?.slice(4)).toEqual(['none', '10.0.0.1,10.0.0.2']);
    expect(DHCP_BOUND_LINE.test('nodevmm-init: eth0 no DHCP lease yet; udhcpc keeps trying (log: /run/udhcpc-eth0.log)')).toBe(false);
  });
});

describe('parseBuildStage', () => {
  it('parses build.sh stage lines and ignores other output', () => {
    expect(parseBuildStage('[3/10] configuring x86_64 kernel ... (0m02s elapsed)')).toEqual({
      stage: 3,
      total: 10,
      text: 'configuring x86_64 kernel ... (0m02s elapsed)',
    });
    expect(parseBuildStage('      ... x86_64 kernel build: 12 build steps so far')).toBeUndefined();
  });
});

describe('buildReferenceGuest argument checks', () => {
  it('rejects a bad arch or job count before running anything', async () => {
    // @ts-expect-error: deliberately invalid arch
    await expect(buildReferenceGuest({ arch: 'arm64' })).rejects.toThrow(/arch must be x86_64, i386 or all/);
    await expect(buildReferenceGuest({ jobs: 0 })).rejects.toThrow(/jobs must be a positive integer/);
  });
});

describe('buildReferenceGuest on a built cache', () => {
  const built = referenceGuestArtifacts();
  if (!built) console.warn('skipping the up-to-date buildReferenceGuest check: reference guest not built; run guest/build.sh');

  it.skipIf(built === undefined)('returns the existing artifacts without rebuilding and streams progress lines', async () => {
    const lines: string[] = [];
    const result = await buildReferenceGuest({ arch: 'x86_64', onProgress: (line) => lines.push(line) });
    expect(result.dir).toBe(built!.dir);
    expect(result.x86_64).toEqual(built!.x86_64);
    expect(result.i386).toBeUndefined();
    expect(result.rootfs).toBe(built!.rootfs);
    expect(parseBuildStage(lines[0]!)?.stage).toBe(1);
    expect(lines.some((l) => l.includes('up to date'))).toBe(true);
  });
});
