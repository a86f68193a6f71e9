/**
 * Real glibc/compiler output in the interpreter: Debian's static busybox run at CPL3 under a minimal host-emulated
 * Linux system-call layer (linux-user.ts). Start-up (CPUID-based ifunc selection, TLS via FS, SSE2 string functions)
 * and several applets (shell arithmetic, awk floating point, bignum dc, factor) must print exactly what the same
 * binary prints when run natively on the host.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runStaticElf } from './linux-user.js';

const BUSYBOX = '/bin/busybox';
const have = existsSync(BUSYBOX);
if (!have) console.warn('busybox user-mode tests skipped: /bin/busybox missing (apt-get install -y busybox-static)');

describe.skipIf(!have)('static busybox at CPL3', () => {
  const cases: string[][] = [
    ['echo', 'hello', 'world'],
    ['sh', '-c', 'echo $((3*7)); for i in 1 2 3; do echo $i; done; x=abcdef; echo ${#x} ${x%ef} ${x#ab}'],
    ['awk', 'BEGIN{s=0; for(i=1;i<=200;i++) s+=i*1.5; printf "%.3f %d %s %x\\n", s/7, 1024*1024*1024, substr("interpreter",3,5), 48879}'],
    ['dc', '-e', '2 64 ^ 3 / p'],
    ['factor', '600851475143', '9999999967'],
    ['seq', '-s', ',', '5', '-2', '-3'],
  ];
  for (const argv of cases) {
    it(`busybox ${argv.join(' ')}`, () => {
      const want = execFileSync(BUSYBOX, argv).toString();
      const r = runStaticElf(BUSYBOX, ['busybox', ...argv]);
      expect(r.stop).toBe('exit');
      expect(r.stdout).toBe(want);
      expect(r.exitCode).toBe(0);
    });
  }
});
