/**
 * Decoder oracle: every instruction objdump (binutils) finds in /bin/busybox (Debian busybox-static) and in the
 * reference vmlinux (if built) must decode to the same length and mnemonic class. Known, explained differences
 * make the test fail; there are none at present.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runOracle } from './objdump-oracle.js';

const BUSYBOX = '/bin/busybox';
const haveObjdump = existsSync('/usr/bin/objdump');

function findVmlinuxes(): string[] {
  // Built kernels live in ~/.cache/nodevmm/guest/<hash>/; do not descend into build trees (obj/), skip symlinks.
  const root = join(homedir(), '.cache/nodevmm/guest');
  const found: string[] = [];
  if (!existsSync(root)) return found;
  const stack: Array<[string, number]> = [[root, 0]];
  while (stack.length) {
    const [d, depth] = stack.pop()!;
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const st = lstatSync(p);
      if (st.isDirectory() && depth < 2 && e !== 'obj') stack.push([p, depth + 1]);
      else if (st.isFile() && e.startsWith('vmlinux') && !e.endsWith('.bin') && st.size > 1 << 20) found.push(p);
    }
  }
  return found;
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
  if (kernels.length === 0) console.warn('vmlinux oracle skipped: no vmlinux* under ~/.cache/nodevmm/guest (the guest-kernel helper builds it)');
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
