/**
 * Decoder oracle: every instruction objdump (binutils) finds in /bin/busybox (Debian busybox-static) and in the
 * reference vmlinux (if built) must decode to the same length and mnemonic class. Known, explained differences
 * make the test fail; there are none at present.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { referenceGuestArtifacts } from '../../lib/guest/reference-guest.js';
import { runOracle } from './objdump-oracle.js';

const BUSYBOX = '/bin/busybox';
const haveObjdump = existsSync('/usr/bin/objdump');

/** The current reference guest's kernels (older cache directories hold superseded builds of the same source). */
function findVmlinuxes(): string[] {
  const guest = referenceGuestArtifacts();
  if (!guest) return [];
  return [guest.x86_64.vmlinux, guest.i386.vmlinux].filter((p) => existsSync(p));
}

describe('decoder vs objdump', () => {
  if (!haveObjdump) console.warn('decoder oracle skipped: objdump (binutils) is not installed');
  if (!existsSync(BUSYBOX)) console.warn('busybox oracle skipped: /bin/busybox missing (apt-get install -y busybox-static)');

  it.skipIf(!haveObjdump || !existsSync(BUSYBOX))('decodes all of busybox .text with 0 mismatches', async () => {
    const r = await runOracle(BUSYBOX, 64);
    console.log(`busybox: ${r.total} instructions decoded (${r.vex} VEX/EVEX, length-only), ${r.lengthMismatches.length} length and ${r.mnemonicMismatches.length} mnemonic mismatches`);
    expect(r.total).toBeGreaterThan(100_000);
    expect(r.lengthMismatches.slice(0, 10)).toEqual([]);
    expect(r.mnemonicMismatches.slice(0, 10)).toEqual([]);
  }, 300_000);

  const kernels = findVmlinuxes();
  if (kernels.length === 0) console.warn('vmlinux oracle skipped: the reference guest is not built (guest/build.sh)');
  for (const vmlinux of kernels) {
    it.skipIf(!haveObjdump)(`decodes all of ${vmlinux} with 0 mismatches`, async () => {
      const bits = execFileSync('file', ['-L', vmlinux]).toString().includes('64-bit') ? 64 : 32;
      const r = await runOracle(vmlinux, bits);
      console.log(`vmlinux (${bits}-bit): ${r.total} instructions decoded (${r.vex} VEX/EVEX), ${r.lengthMismatches.length} length and ${r.mnemonicMismatches.length} mnemonic mismatches`);
      expect(r.total).toBeGreaterThan(10_000);
      expect(r.lengthMismatches.slice(0, 10)).toEqual([]);
      expect(r.mnemonicMismatches.slice(0, 10)).toEqual([]);
    }, 600_000);
  }
});
