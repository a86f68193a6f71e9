/**
 * An uncompressed newc initramfs (like guest/build.sh's) made from a static busybox and the reference guest's own
 * /init and udhcpc event script (guest/initramfs/), for when guest/build.sh has built the kernel but not the
 * initramfs yet. x86_64: the host's /bin/busybox (busybox-static); i386: $NODEVMM_BUSYBOX_I386, or the i386
 * busybox guest/build.sh unpacks into its cache.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const INIT = fileURLToPath(new URL('../../guest/initramfs/init', import.meta.url));
const UDHCPC_SCRIPT = fileURLToPath(new URL('../../guest/initramfs/udhcpc.script', import.meta.url));

interface Entry { name: string; mode: number; data?: Buffer; rdev?: [number, number] }

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000, S_IFCHR = 0o020000;
const align4 = (n: number): number => (n + 3) & ~3;

function newc(entries: Entry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of [...entries, { name: 'TRAILER!!!', mode: 0 } as Entry]) {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`, 'latin1');
    const [major, minor] = e.rdev ?? [0, 0];
    const fields = [ino++, e.mode, 0, 0, e.mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, major, minor, name.length, 0];
    const head = Buffer.concat([Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'latin1'), name]);
    parts.push(head, Buffer.alloc(align4(head.length) - head.length), data, Buffer.alloc(align4(data.length) - data.length));
  }
  return Buffer.concat(parts);
}

function busyboxFor(arch: 'x86_64' | 'i386'): string | undefined {
  if (arch === 'x86_64') return existsSync('/bin/busybox') ? '/bin/busybox' : undefined;
  const env = process.env.NODEVMM_BUSYBOX_I386;
  if (env) return env;
  // guest/build.sh unpacks it to <cache>/busybox-i386/<version>/root.
  for (const cache of [join(homedir(), '.cache/nodevmm/guest/busybox-i386'), join(homedir(), '.cache/nodevmm/busybox-i386')]) {
    if (!existsSync(cache)) continue;
    for (const v of readdirSync(cache)) {
      for (const p of ['root/bin/busybox', 'root/usr/bin/busybox']) if (existsSync(join(cache, v, p))) return join(cache, v, p);
    }
  }
  return undefined;
}

/** Path of the initramfs (cached in the temp directory), or why it cannot be made. */
export function busyboxInitramfs(arch: 'x86_64' | 'i386' = 'x86_64'): string | { skip: string } {
  const busybox = busyboxFor(arch);
  if (!busybox) return { skip: `no static ${arch} busybox (x86_64: apt-get install busybox-static; i386: set NODEVMM_BUSYBOX_I386)` };
  const file = execFileSync('file', ['-b', busybox], { encoding: 'utf8' });
  const want = arch === 'x86_64' ? 'x86-64' : 'Intel 80386';
  if (!file.includes(want) || !file.includes('statically linked')) return { skip: `${busybox} is not a static ${arch} binary (${file.trim()})` };
  const init = readFileSync(INIT);
  const script = readFileSync(UDHCPC_SCRIPT);
  const bin = readFileSync(busybox);
  // Named by its contents, so an edited /init or script never boots a stale archive.
  const key = createHash('sha256').update(init).update(script).update(bin).digest('hex').slice(0, 16);
  const dir = join(tmpdir(), 'nodevmm-interp-test');
  const out = join(dir, `busybox-initramfs-${arch}-${key}.cpio`);
  if (existsSync(out)) return out;
  // The host runs i386 binaries too (IA-32 emulation), so the applet list comes from the binary itself.
  const applets = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n').filter((a) => a !== '' && a !== 'bin/busybox');
  const entries: Entry[] = [];
  const dirs = new Set(['bin', 'sbin', 'usr', 'usr/bin', 'usr/sbin', 'usr/share', 'usr/share/udhcpc', 'dev', 'proc', 'sys', 'tmp', 'root', 'mnt', 'etc', 'run']);
  for (const d of dirs) entries.push({ name: d, mode: S_IFDIR | 0o755 });
  entries.push({ name: 'dev/console', mode: S_IFCHR | 0o600, rdev: [5, 1] });
  entries.push({ name: 'dev/null', mode: S_IFCHR | 0o666, rdev: [1, 3] });
  entries.push({ name: 'bin/busybox', mode: S_IFREG | 0o755, data: bin });
  for (const a of applets) entries.push({ name: a, mode: S_IFLNK | 0o777, data: Buffer.from('/bin/busybox') });
  entries.push({ name: 'init', mode: S_IFREG | 0o755, data: init });
  entries.push({ name: 'usr/share/udhcpc/default.script', mode: S_IFREG | 0o755, data: script });
  mkdirSync(dir, { recursive: true });
  // Written under a temporary name and renamed: a parallel test never reads a half-written archive.
  writeFileSync(`${out}.${process.pid}.tmp`, newc(entries));
  renameSync(`${out}.${process.pid}.tmp`, out);
  return out;
}
