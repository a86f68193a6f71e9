/**
 * Child process for test/net/tap-lifecycle.test.ts: things only a fresh process can show.
 *
 *   exit IFNAME   open a TAP, bring it up, send a frame, close; print a JSON report and end main() — the
 *                 process must then exit by itself (nothing of the TAP may keep the event loop alive).
 *   pool IFNAME   open a TAP and leave it idle (link down: no frame can arrive), then start 4 fs reads of FIFOs
 *                 that have no data yet. The data is written only once /proc shows 4 threads blocked in read()
 *                 on those FIFOs at the same time; with UV_THREADPOOL_SIZE=4 that happens only if the TAP holds
 *                 no pool thread (x86-64 syscall numbers).
 *
 * Prints one line `RESULT {json}` on success; exits non-zero with the error otherwise.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, read, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TapBackend } from '../../lib/net/tap.js';

const [mode, ifname] = process.argv.slice(2);

function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['-o', 'link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A broadcast ARP request for 192.0.2.1 from 52:54:00:12:34:56 (the kernel has no such address: ignored). */
function arpRequest(): Uint8Array {
  const mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
  return Uint8Array.from([
    ...[255, 255, 255, 255, 255, 255], ...mac, 0x08, 0x06,
    0, 1, 8, 0, 6, 4, 0, 1, ...mac, 192, 0, 2, 2, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
  ]);
}

async function exitMode(name: string): Promise<Record<string, unknown>> {
  const logs: string[] = [];
  const tap = TapBackend.open(name, { log: (m) => logs.push(m) });
  // No IPv6 on the link: the kernel then sends nothing to it, so the link stays idle after the one frame.
  execFileSync('sysctl', ['-qw', `net.ipv6.conf.${tap.ifname}.disable_ipv6=1`]);
  execFileSync('ip', ['link', 'set', tap.ifname, 'up']);
  tap.send(arpRequest());
  const existedBeforeClose = linkExists(tap.ifname);
  await tap.close();
  // A non-persistent TAP disappears when its last fd is closed: checking right away shows close() closed it.
  return { existedBeforeClose, existsAfterClose: linkExists(tap.ifname), stats: tap.stats, logs };
}

/** x86-64 numbers of the read family: read, pread64, readv, preadv, preadv2. */
const READ_SYSCALLS = new Set([0, 17, 19, 295, 327]);

/** How many threads of this process are blocked in a read of one of `fds` (from /proc/self/task/N/syscall). */
function threadsReading(fds: Set<number>): number {
  let n = 0;
  for (const tid of readdirSync('/proc/self/task')) {
    let line: string;
    try {
      line = readFileSync(`/proc/self/task/${tid}/syscall`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const [nr, fd] = line.trim().split(' ');
    if (READ_SYSCALLS.has(Number(nr)) && fds.has(Number(fd))) n++;
  }
  return n;
}

async function poolMode(name: string): Promise<Record<string, unknown>> {
  if (process.env['UV_THREADPOOL_SIZE'] !== '4') throw new Error('run with UV_THREADPOOL_SIZE=4');
  if (process.arch !== 'x64') throw new Error('pool mode reads x86-64 syscall numbers from /proc');
  const tap = TapBackend.open(name);
  const dir = mkdtempSync(join(tmpdir(), 'nodevmm-pool-'));
  try {
    const fifos = [0, 1, 2, 3].map((i) => join(dir, `f${i}`));
    execFileSync('mkfifo', fifos);
    // O_RDWR: opening does not wait for a writer, and a read waits for data (never sees end of file).
    const fds = fifos.map((f) => openSync(f, 'r+'));
    const reads = fds.map(
      (fd) => new Promise<string>((resolve, reject) => read(fd, Buffer.alloc(16), 0, 16, null, (err, n, b) => (err ? reject(err) : resolve(b.toString('utf8', 0, n))))),
    );
    const watched = new Set(fds);
    let seen = 0;
    for (let i = 0; i < 2000 && seen < 4; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = Math.max(seen, threadsReading(watched));
    }
    if (seen < 4) throw new Error(`only ${seen} of 4 pool threads ever reached read() on the FIFOs at once (is one parked on the TAP?)`);
    fds.forEach((fd, i) => writeSync(fd, `${'abcd'[i]}\n`));
    const contents = await Promise.all(reads);
    fds.forEach((fd) => closeSync(fd));
    await tap.close();
    return { concurrentReads: seen, contents };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  if (!ifname) throw new Error('usage: tap-lifecycle-child.ts exit|pool IFNAME');
  const result = mode === 'exit' ? await exitMode(ifname) : mode === 'pool' ? await poolMode(ifname) : undefined;
  if (!result) throw new Error(`unknown mode ${mode}`);
  console.log(`RESULT ${JSON.stringify(result)}`);
} catch (e) {
  console.error(e instanceof Error ? e.stack : String(e));
  process.exitCode = 1;
}
