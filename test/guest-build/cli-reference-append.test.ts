/** The command line `nodevmm run` gives the reference guest: the protocol's one, plus nodevmm.net=dhcp with --net. */
import { describe, expect, it } from 'vitest';
import { referenceGuestAppend } from '../../lib/cli/commands/reference-guest-files.js';
import { buildRunConfig } from '../../lib/cli/commands/run.js';
import { parseRunOptions } from '../../lib/cli/commands/run-options.js';
import { REFERENCE_GUEST_CMDLINE } from '../../lib/guest/guest-protocol.js';
import { referenceGuestArch } from '../../lib/guest/reference-guest.js';

describe('referenceGuestAppend', () => {
  it('is REFERENCE_GUEST_CMDLINE without networks and adds nodevmm.net=dhcp with any', () => {
    expect(referenceGuestAppend({ nets: 0 })).toBe(REFERENCE_GUEST_CMDLINE);
    expect(referenceGuestAppend({ nets: 1 })).toBe(`${REFERENCE_GUEST_CMDLINE} nodevmm.net=dhcp`);
    expect(referenceGuestAppend({ nets: 3 })).toBe(`${REFERENCE_GUEST_CMDLINE} nodevmm.net=dhcp`);
  });
});

const built = referenceGuestArch('x86_64') !== undefined;
if (!built) console.warn('skipping buildRunConfig reference-guest checks: the x86_64 reference guest is not built; run guest/build.sh');

describe.skipIf(!built)('buildRunConfig for the reference guest (no --kernel)', () => {
  const config = (argv: string[]) => buildRunConfig(parseRunOptions(argv), () => {});

  it('boots the reference vmlinux + uncompressed initramfs with the protocol command line', async () => {
    const c = await config([]);
    expect(c.kernel).toMatch(/\/vmlinux-x86_64$/);
    expect(c.initrd).toMatch(/\/initramfs-x86_64\.cpio$/);
    expect(c.cmdline).toBe(REFERENCE_GUEST_CMDLINE);
  });

  it('adds nodevmm.net=dhcp when there is a --net, and an explicit --append wins', async () => {
    expect((await config(['--net', 'user'])).cmdline).toBe(`${REFERENCE_GUEST_CMDLINE} nodevmm.net=dhcp`);
    expect((await config(['--net', 'user', '--append', 'console=ttyS0'])).cmdline).toBe('console=ttyS0');
  });
});
