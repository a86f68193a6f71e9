/**
 * The native PacketFd contract (native/packet_fd.cc): argument checking, delivery in batches from the event loop,
 * end of stream and read errors reported once (the watcher stops instead of spinning on an fd that stays
 * readable), send/close semantics, close from inside the callback. FIFOs stand in for a packet fd where only
 * the addon is needed; a real TAP (root) shows the batch bound and oversized frames. Skipped with the reason
 * when the addon or (for the TAP part) root, /dev/net/tun or ip(8) is missing.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, constants, existsSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNative, type NativePacketFd } from '../../lib/kvm/native.js';
import { TapBackend } from '../../lib/net/tap.js';

const run = promisify(execFile);
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type PacketFdClass = new (fd: number, maxFrameBytes: number) => NativePacketFd;
function packetFdClass(): PacketFdClass | string {
  try {
    return loadNative().PacketFd ?? 'the native addon has no PacketFd (rebuild it: npm run build:native)';
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
const PacketFdOrReason = packetFdClass();
const addonReason = typeof PacketFdOrReason === 'string' ? PacketFdOrReason : null;
if (addonReason) console.warn(`skipping PacketFd tests: ${addonReason}`);
const PacketFd = PacketFdOrReason as PacketFdClass;

function tapReason(): string | null {
  if (addonReason) return addonReason;
  if (process.getuid?.() !== 0) return 'not running as root (TUNSETIFF needs CAP_NET_ADMIN)';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].some((p) => existsSync(p))) return 'no ip(8)';
  if (typeof loadNative().openTap !== 'function') return 'the native addon has no openTap()';
  return null;
}
const tapSkip = tapReason();
if (!addonReason && tapSkip) console.warn(`skipping the PacketFd-on-TAP tests: ${tapSkip}`);

const dir = mkdtempSync(join(tmpdir(), 'nodevmm-packetfd-'));
const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

let fifoCount = 0;
/** A FIFO with a non-blocking read end (the PacketFd's) and a write end for the test. */
function fifo(): { readFd: number; writeFd: number } {
  const path = join(dir, `f${fifoCount++}`);
  execFileSync('mkfifo', [path]);
  const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writeFd = openSync(path, constants.O_WRONLY);
  cleanups.push(() => closeSync(writeFd));
  return { readFd, writeFd };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Let the event loop turn many times (a watcher spinning on a readable fd would call back in each). */
async function manyTurns(): Promise<void> {
  for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
  await new Promise((r) => setTimeout(r, 20));
}

const { EBADF, EPIPE } = osConstants.errno;

describe.skipIf(addonReason !== null)('native PacketFd', () => {
  it('checks its arguments, naming the one at fault', () => {
    expect(() => new PacketFd(-1, 1500)).toThrow(/PacketFd fd/);
    expect(() => new PacketFd(1.5, 1500)).toThrow(/PacketFd fd/);
    expect(() => new PacketFd(0, 13)).toThrow(RangeError);
    expect(() => new PacketFd(0, (1 << 20) + 1)).toThrow(/maxFrameBytes/);
    // A number that is not an open fd: fcntl fails, Node-style.
    expect(() => new PacketFd(1_000_000, 1500)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'fcntl' }));
    const { readFd } = fifo();
    const p = new PacketFd(readFd, 1500);
    expect(() => p.start(7 as unknown as () => void)).toThrow(TypeError);
    expect(() => p.send('text' as unknown as Uint8Array)).toThrow(TypeError);
    p.close();
  });

  it('delivers what is readable as Buffers from the event loop, and reports end of stream once', async () => {
    const { readFd, writeFd } = fifo();
    const p = new PacketFd(readFd, 1500);
    expect(p.fd).toBe(readFd);
    const calls: Array<{ frames: string[]; error: number }> = [];
    p.start((frames, error) => calls.push({ frames: frames.map((f) => (Buffer.isBuffer(f) ? f.toString() : 'not a Buffer')), error }));
    expect(() => p.start(() => {})).toThrow(/already started/);
    writeSync(writeFd, 'first');
    await until(() => calls.length === 1, 'the first frame');
    expect(calls[0]).toEqual({ frames: ['first'], error: 0 });
    writeSync(writeFd, 'second');
    closeSync(writeFd);
    cleanups.pop();
    // With no writer left the FIFO reads 0 forever and stays readable: one -EPIPE report, then silence.
    await until(() => calls.some((c) => c.error !== 0), 'the end-of-stream report');
    await manyTurns();
    expect(calls.flatMap((c) => c.frames)).toEqual(['first', 'second']);
    expect(calls.filter((c) => c.error !== 0)).toHaveLength(1);
    expect(calls[calls.length - 1]!.error).toBe(-EPIPE);
    // Stopped, not closed: it may be started again (and reports the same condition again, once).
    expect(p.fd).toBe(readFd);
    let again = 0;
    p.start((_f, error) => (again += error === -EPIPE ? 1 : 100));
    await until(() => again > 0, 'the report after restarting');
    await manyTurns();
    expect(again).toBe(1);
    p.close();
  });

  it('close() is immediate and idempotent; afterwards send() returns -EBADF and start() throws', async () => {
    const { readFd, writeFd } = fifo();
    const p = new PacketFd(readFd, 1500);
    let calls = 0;
    p.start(() => calls++);
    p.close();
    expect(p.fd).toBe(-1);
    expect(() => fstatSync(readFd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    p.close();
    expect(p.send(new Uint8Array(20))).toBe(-EBADF);
    expect(() => p.start(() => {})).toThrow(/closed/);
    // The read end is really gone: the FIFO has no reader left.
    expect(() => writeSync(writeFd, 'after close')).toThrow(expect.objectContaining({ code: 'EPIPE' }));
    await manyTurns();
    expect(calls).toBe(0);
  });

  it('send() writes exactly the bytes of the view (offset and length respected) and returns the count', () => {
    const { readFd, writeFd } = fifo();
    cleanups.pop(); // the PacketFd owns the write end
    cleanups.push(() => closeSync(readFd));
    const p = new PacketFd(writeFd, 1500);
    expect(p.send(Buffer.from('xxhello packetyy').subarray(2, 14))).toBe(12);
    const got = Buffer.alloc(64);
    expect(readSync(readFd, got)).toBe(12);
    expect(got.toString('utf8', 0, 12)).toBe('hello packet');
    p.close();
  });

  it('close() from inside the callback ends delivery at once', async () => {
    const { readFd, writeFd } = fifo();
    const p = new PacketFd(readFd, 1500);
    let calls = 0;
    p.start(() => {
      calls++;
      p.close();
      p.close();
    });
    writeSync(writeFd, 'one');
    await until(() => calls > 0, 'the callback');
    expect(() => writeSync(writeFd, 'two')).toThrow(expect.objectContaining({ code: 'EPIPE' }));
    await manyTurns();
    expect(calls).toBe(1);
    expect(p.fd).toBe(-1);
  });

  it('start() again from inside the error report: each start reports the condition once, then silence', async () => {
    const { readFd, writeFd } = fifo();
    closeSync(writeFd); // no writer: end of stream at once
    cleanups.pop();
    const p = new PacketFd(readFd, 1500);
    const errors: number[] = [];
    const onFrames = (_frames: Buffer[], error: number): void => {
      errors.push(error);
      if (errors.length < 3) p.start(onFrames); // the watcher stopped before this call: it may start again now
    };
    p.start(onFrames);
    await until(() => errors.length === 3, 'three end-of-stream reports');
    await manyTurns();
    expect(errors).toEqual([-EPIPE, -EPIPE, -EPIPE]);
    expect(() => p.start(() => {})).not.toThrow();
    p.close();
  });

  it('refuses to watch an fd the kernel cannot poll (a regular file), and can still be closed', () => {
    const fd = openSync(join(dir, 'plain'), 'w+');
    const p = new PacketFd(fd, 1500);
    expect(() => p.start(() => {})).toThrow(/uv_poll/);
    p.close();
    expect(p.fd).toBe(-1);
  });

  it('a worker that ends with its PacketFd still watching shuts down cleanly and closes the fd', { timeout: 60_000 }, async () => {
    // Only the worker loads the addon, so Node unloads it when the worker's environment goes away: a handle
    // closed too late would call into unmapped code (this crashed the process before the cleanup hook).
    const addonPath = (createRequire(import.meta.url)('node-gyp-build') as { path(dir: string): string }).path(REPO);
    const fifoPath = join(dir, 'worker.fifo');
    execFileSync('mkfifo', [fifoPath]);
    // The worker: watch a FIFO with data waiting, report the fd, then end in one of four ways.
    writeFileSync(join(dir, 'worker.cjs'), `
      const { parentPort, workerData } = require('node:worker_threads');
      const fs = require('node:fs');
      const { PacketFd } = require(workerData.addonPath);
      const fd = fs.openSync(workerData.fifoPath, 'r+');
      const p = new PacketFd(fd, 1500);
      p.start(() => {});
      fs.writeSync(fd, 'x');
      const alive = setInterval(() => {}, 1000);
      setTimeout(() => {
        parentPort.postMessage(fd);
        if (workerData.how === 'close-then-exit') p.close();
        // 'return': nothing keeps the loop alive any more (the watcher is unref'd), so the worker ends started.
        if (workerData.how === 'return') clearInterval(alive);
        else if (workerData.how !== 'terminate') process.exit(0);
      }, 50);
    `);
    writeFileSync(join(dir, 'main.mjs'), `
      import { Worker } from 'node:worker_threads';
      import { fstatSync } from 'node:fs';
      const [workerFile, addonPath, fifoPath] = process.argv.slice(2);
      for (const how of ['terminate', 'exit', 'close-then-exit', 'return']) {
        const w = new Worker(workerFile, { workerData: { addonPath, fifoPath, how } });
        // Listen for 'exit' from the start: a worker calling process.exit() may be gone before the message's
        // continuation runs.
        const exited = new Promise((r) => w.once('exit', r));
        const fd = await new Promise((r) => w.once('message', r));
        if (how === 'terminate') await w.terminate();
        await exited;
        let open = true;
        try { fstatSync(fd); } catch { open = false; }
        console.log(how + ' fd-open=' + open);
      }
    `);
    const r = await run(process.execPath, [join(dir, 'main.mjs'), join(dir, 'worker.cjs'), addonPath, fifoPath], { timeout: 30_000 }).catch((e: { code?: unknown; signal?: unknown; stdout?: string; stderr?: string }) => ({ failed: e }));
    if ('failed' in r) throw new Error(`the child failed (${String(r.failed.code ?? r.failed.signal)}): ${r.failed.stdout}${r.failed.stderr}`);
    expect(r.stdout.trim().split('\n')).toEqual(['terminate fd-open=false', 'exit fd-open=false', 'close-then-exit fd-open=false', 'return fd-open=false']);
  });

  it('TapBackend.fromFd owns the fd even when it fails: an unpollable fd is closed and the error names uv_poll', () => {
    const fd = openSync(join(dir, 'not-a-tap'), 'w+');
    expect(() => TapBackend.fromFd(fd, 'nottap0')).toThrow(/uv_poll/);
    expect(() => fstatSync(fd)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  describe.skipIf(tapSkip !== null)('on a TAP', () => {
    /** A TAP at 10.98.N.1/24 with 10.98.N.2 as a static neighbour, so host datagrams to .2 come out of the fd. */
    async function tapWithNeighbour(n: number, maxFrameBytes: number): Promise<NativePacketFd> {
      const h = loadNative().openTap!(`nvpf${n}x${process.pid % 10000}`);
      cleanups.push(() => run('ip', ['link', 'del', h.ifname]));
      await run('sysctl', ['-qw', `net.ipv6.conf.${h.ifname}.disable_ipv6=1`]);
      await run('ip', ['addr', 'add', `10.98.${n}.1/24`, 'dev', h.ifname]);
      await run('ip', ['link', 'set', h.ifname, 'up']);
      await run('ip', ['neigh', 'replace', `10.98.${n}.2`, 'lladdr', '52:54:00:98:00:02', 'dev', h.ifname]);
      const p = new PacketFd(h.fd, maxFrameBytes);
      cleanups.push(() => p.close());
      return p;
    }

    it('reads a burst in batches of at most 64 frames', async () => {
      const p = await tapWithNeighbour(1, 1514);
      const batches: number[] = [];
      let udp = 0;
      p.start((frames, error) => {
        expect(error).toBe(0);
        batches.push(frames.length);
        for (const f of frames) if (f[12] === 8 && f[13] === 0 && f[23] === 17) udp++;
      });
      const sock = createSocket('udp4');
      cleanups.push(() => sock.close());
      // All 300 datagrams are handed to the kernel within this turn of the loop, so they wait in the TAP's queue
      // (txqueuelen 1000) before the watcher's first read.
      for (let i = 0; i < 300; i++) sock.send(Buffer.alloc(200, i), 9, '10.98.1.2');
      await until(() => udp >= 300, 'all 300 datagrams');
      expect(udp).toBe(300);
      expect(Math.max(...batches)).toBe(64);
      expect(batches.length).toBeGreaterThanOrEqual(5);
    });

    it('drops frames longer than maxFrameBytes and counts them', async () => {
      const small = await tapWithNeighbour(2, 100);
      const lengths: number[] = [];
      small.start((frames) => lengths.push(...frames.map((f) => f.length)));
      const sock = createSocket('udp4');
      cleanups.push(() => sock.close());
      // 14 + 20 + 8 + 58 = 100 bytes fits exactly; 59 bytes of payload makes 101.
      sock.send(Buffer.alloc(59), 9, '10.98.2.2');
      sock.send(Buffer.alloc(58), 9, '10.98.2.2');
      await until(() => lengths.length >= 1 && small.oversized >= 1, 'one delivered and one dropped frame');
      await manyTurns();
      expect(lengths).toEqual([100]);
      expect(small.oversized).toBe(1);
    });
  });
});
