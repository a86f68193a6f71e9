/**
 * TAP backend frame rates (lib/net/tap.ts: the addon's PacketFd, uv_poll on the JS loop, non-blocking write()
 * on the JS thread) against the host kernel: the write path sends UDP frames to a socket bound on the TAP's host
 * address (yielding to the loop every 32 frames, like the loopback reference), the read path has a host socket
 * send datagrams (in bursts of 500) to the "guest" address behind the TAP, and a UDP echo round trip with one
 * datagram in flight measures latency. Reference: the same datagrams and round trips over loopback, same run.
 * Needs root and openTap() in the addon (or NODEVMM_TEST_TAP_ADDON=path/to/a .node exporting openTap).
 * Usage: npx tsx bench/net-tap.ts [frames=20000]
 */
import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createRequire } from 'node:module';
import { TapBackend } from '../lib/net/tap.js';
import { setTapOpener, tapUnavailableReason, type TapOpener } from '../lib/net/tap-open.js';
import { buildEthernet } from '../lib/net/user/ethernet.js';
import { buildIpv4 } from '../lib/net/user/ipv4.js';
import { buildUdp } from '../lib/net/user/udp.js';
import { ipv4ToNumber } from '../lib/net/spec.js';

const N = Number(process.argv[2] ?? 20000);
const PAYLOAD = 1400;
const addon = process.env['NODEVMM_TEST_TAP_ADDON'];
if (addon) setTapOpener((createRequire(import.meta.url)(addon) as { openTap: TapOpener }).openTap);

/** Wait until `count()` stops changing for 200 ms; returns the time of the last change. */
async function settle(count: () => number): Promise<bigint> {
  let last = count();
  let lastChange = process.hrtime.bigint();
  for (;;) {
    await new Promise((r) => setTimeout(r, 20));
    const now = count();
    if (now !== last) {
      last = now;
      lastChange = process.hrtime.bigint();
    } else if (process.hrtime.bigint() - lastChange > 200_000_000n) {
      return lastChange;
    }
  }
}

/** Send N datagrams with `send`, yielding to the event loop every 32. */
async function paced(send: () => void): Promise<void> {
  for (let i = 0; i < N; i++) {
    send();
    if (i % 32 === 31) await new Promise((r) => setImmediate(r));
  }
}

async function loopback(): Promise<number> {
  const rx = createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  await new Promise<void>((r) => rx.bind(0, '127.0.0.1', r));
  const tx = createSocket('udp4');
  let got = 0;
  rx.on('message', () => got++);
  const buf = Buffer.alloc(PAYLOAD);
  const t0 = process.hrtime.bigint();
  await paced(() => tx.send(buf, rx.address().port, '127.0.0.1'));
  const end = await settle(() => got);
  rx.close();
  tx.close();
  return got / (Number(end - t0) / 1e9);
}

const ROUNDS = 2000;

/** Median of a list of nanosecond samples, in microseconds. */
function medianUs(samples: bigint[]): number {
  const sorted = samples.map(Number).sort((a, b) => a - b);
  return sorted[sorted.length >> 1]! / 1000;
}

/** Reference round trip: a UDP ping-pong between two sockets over loopback, one datagram in flight. */
async function loopbackRtt(): Promise<number> {
  const echo = createSocket('udp4');
  echo.on('message', (m, r) => echo.send(m, r.port, r.address));
  await new Promise<void>((r) => echo.bind(0, '127.0.0.1', r));
  const client = createSocket('udp4');
  await new Promise<void>((r) => client.bind(0, '127.0.0.1', r));
  const samples: bigint[] = [];
  const buf = Buffer.alloc(64);
  for (let i = 0; i < ROUNDS; i++) {
    const t = process.hrtime.bigint();
    await new Promise<void>((r) => {
      client.once('message', () => r());
      client.send(buf, echo.address().port, '127.0.0.1');
    });
    samples.push(process.hrtime.bigint() - t);
  }
  echo.close();
  client.close();
  return medianUs(samples);
}

async function main(): Promise<void> {
  const why = process.getuid?.() !== 0 ? 'not root' : tapUnavailableReason();
  if (why) {
    console.log(`bench/net-tap: skipped (${why})`);
    return;
  }
  const tap = TapBackend.open('nvbench0');
  const sh = (...a: string[]): void => void execFileSync('ip', a);
  try {
    sh('addr', 'add', '192.168.124.1/24', 'dev', tap.ifname);
    sh('link', 'set', tap.ifname, 'up', 'txqueuelen', '5000');
    const guestMac = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x99);
    sh('neigh', 'replace', '192.168.124.2', 'lladdr', '52:54:00:12:34:99', 'dev', tap.ifname);
    const hostMac = Uint8Array.from(execFileSync('cat', [`/sys/class/net/${tap.ifname}/address`]).toString().trim().split(':').map((h) => parseInt(h, 16)));
    const host = ipv4ToNumber('192.168.124.1');
    const guest = ipv4ToNumber('192.168.124.2');

    // Write path: frames from the "guest" to a host UDP socket.
    const rx = createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
    await new Promise<void>((r) => rx.bind(0, '192.168.124.1', r));
    const frame = buildEthernet(hostMac, guestMac, 0x0800, buildIpv4(guest, host, 17, buildUdp(guest, host, 5000, rx.address().port, new Uint8Array(PAYLOAD))));
    let got = 0;
    rx.on('message', () => got++);
    const t0 = process.hrtime.bigint();
    await paced(() => tap.send(frame));
    const wEnd = await settle(() => tap.stats.framesSent);
    const writeRate = tap.stats.framesSent / (Number(wEnd - t0) / 1e9);
    rx.close();

    // Read path: a host socket sends to the "guest"; count frames the backend reads.
    let read = 0;
    tap.onFrame((f) => {
      if (f[23] === 17) read++;
    });
    const tx = createSocket('udp4');
    const buf = Buffer.alloc(PAYLOAD);
    // Bursts of 500 (within the interface's queue), each read completely before the next: the reader's capacity.
    const t1 = process.hrtime.bigint();
    let sent = 0;
    while (sent < N) {
      for (let i = 0; i < 500 && sent < N; i++, sent++) tx.send(buf, 6000, '192.168.124.2');
      const burstDeadline = Date.now() + 2000;
      while (read < sent * 0.98 && Date.now() < burstDeadline) await new Promise((r) => setImmediate(r));
    }
    const rEnd = await settle(() => read);
    const readRate = read / (Number(rEnd - t1) / 1e9);
    tx.close();

    // Round trip: the "guest" sends a 64-byte UDP datagram through the TAP to a host socket that echoes it back;
    // the next one leaves when the echo frame has been read. One frame in flight: latency, not throughput.
    const echo = createSocket('udp4');
    echo.on('message', (m, r) => echo.send(m, r.port, r.address));
    await new Promise<void>((r) => echo.bind(0, '192.168.124.1', r));
    const ping = buildEthernet(hostMac, guestMac, 0x0800, buildIpv4(guest, host, 17, buildUdp(guest, host, 5001, echo.address().port, new Uint8Array(64))));
    let waiting: (() => void) | undefined;
    tap.onFrame((f) => {
      if (f[23] === 17 && f[36] === 0x13 && f[37] === 0x89) waiting?.(); // UDP to port 5001
    });
    const rtts: bigint[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const t = process.hrtime.bigint();
      const ok = await new Promise<boolean>((r) => {
        const timer = setTimeout(() => r(false), 1000);
        waiting = () => {
          clearTimeout(timer);
          r(true);
        };
        tap.send(ping);
      });
      if (ok) rtts.push(process.hrtime.bigint() - t);
    }
    waiting = undefined;
    echo.close();
    const tapRtt = medianUs(rtts);
    const refRtt = await loopbackRtt();
    const ref = await loopback();
    console.log(`TAP backend, ${N} UDP frames of ${PAYLOAD} bytes:`);
    console.log(`  loopback UDP (reference)   ${ref.toFixed(0).padStart(8)} frames/s`);
    console.log(`  TAP write (guest → host)   ${writeRate.toFixed(0).padStart(8)} frames/s   ratio ${(writeRate / ref).toFixed(3)}   (${got} delivered)`);
    console.log(`  TAP read  (host → guest)   ${readRate.toFixed(0).padStart(8)} frames/s   ratio ${(readRate / ref).toFixed(3)}   (${read} read)`);
    console.log(`UDP echo round trip, median of ${ROUNDS} (one datagram in flight):`);
    console.log(`  loopback UDP (reference)   ${refRtt.toFixed(1).padStart(8)} µs`);
    console.log(`  through the TAP            ${tapRtt.toFixed(1).padStart(8)} µs   ratio ${(tapRtt / refRtt).toFixed(2)}   (${rtts.length}/${ROUNDS} answered)`);
  } finally {
    await tap.close(); // the interface goes with its fd
  }
}

await main();
