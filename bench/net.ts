/**
 * User-mode network TCP NAT throughput: a download from a loopback TCP server to a test-side guest TCP endpoint,
 * through the UserNetwork (raw Ethernet frames, our TCP on the guest side) and, in a second section, through the
 * virtio-net device as well; versus the same download over a plain loopback socket, in the same run.
 * Usage: npx tsx bench/net.ts [sizeMiB=32]
 */
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { UserNetwork } from '../lib/net/user/user-network.js';
import { GuestMemory } from '../lib/machine/guest-memory.js';
import { VirtioNet } from '../lib/virtio/net/device.js';
import { VirtioMmioTransport } from '../lib/virtio/mmio.js';
import { GuestAllocator, RecordingIrq, TestDriver } from '../test/virtio/driver.js';
import { GuestNic } from '../test/virtio/net-guest-nic.js';
import type { NetRig } from '../test/virtio/net-helpers.js';
import { GuestStack, TestTcp, ip } from '../test/net/guest-stack.js';
import type { NetBackend } from '../lib/net/backend.js';
import { buildTcp } from '../lib/net/user/tcp/segment.js';
import { buildIpv4 } from '../lib/net/user/ipv4.js';
import { buildEthernet } from '../lib/net/user/ethernet.js';

const MiB = 1 << 20;
const sizeMiB = Number(process.argv[2] ?? 32);
const payload = Buffer.alloc(sizeMiB * MiB, 0x5a);

async function source(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.end(payload));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

async function direct(port: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  await new Promise<void>((resolve) => {
    let n = 0;
    const s = connect(port, '127.0.0.1');
    s.on('data', (d) => (n += d.length));
    s.on('end', () => {
      if (n !== payload.length) throw new Error(`direct: got ${n} bytes`);
      resolve();
    });
  });
  return sizeMiB / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function throughGuest(port: number, nic: NetBackend, localPort: number): Promise<number> {
  const g = new GuestStack(nic);
  g.gwMac = Uint8Array.of(0x52, 0x55, 10, 0, 2, 2);
  const c = new TestTcp(g, localPort, ip('10.0.2.2'), port);
  const t0 = process.hrtime.bigint();
  await c.connect();
  await c.until(() => c.finReceived, 'the download', 600_000);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (c.receivedBytes !== payload.length) throw new Error(`guest: got ${c.receivedBytes} bytes`);
  c.dispose();
  return sizeMiB / secs;
}

/**
 * A lean guest receiver (no checksum verification, ACK every second segment, fixed 64 KiB window) so the
 * figure shows the user-mode network's own cost rather than the test stack's.
 */
async function leanGuest(port: number, net: NetBackend, localPort: number): Promise<number> {
  const mac = Uint8Array.of(0x52, 0x54, 0, 0x12, 0x34, 0x56);
  const gw = Uint8Array.of(0x52, 0x55, 10, 0, 2, 2);
  const me = ip('10.0.2.15');
  const gwIp = ip('10.0.2.2');
  const iss = 1000;
  let rcvNxt = 0;
  let received = 0;
  let segs = 0;
  let done: () => void = () => {};
  const finished = new Promise<void>((r) => (done = r));
  const send = (flags: number, seq: number, ack: number, syn = false): void => {
    const t = buildTcp(me, gwIp, { srcPort: localPort, dstPort: port, seq, ack, flags, window: 65535, ...(syn ? { mss: 1460 } : {}), payload: new Uint8Array(0) });
    net.send(buildEthernet(gw, mac, 0x0800, buildIpv4(me, gwIp, 6, t)));
  };
  net.onFrame((f) => {
    if (f[23] !== 6) return;
    const l4 = f.subarray(34);
    const flags = l4[13]!;
    const seq = ((l4[4]! << 24) | (l4[5]! << 16) | (l4[6]! << 8) | l4[7]!) >>> 0;
    const hl = (l4[12]! >>> 4) * 4;
    const len = ((f[16]! << 8) | f[17]!) - 20 - hl;
    if (flags & 2) {
      rcvNxt = (seq + 1) >>> 0;
      send(0x10, iss + 1, rcvNxt);
      return;
    }
    if (seq !== rcvNxt) return;
    rcvNxt = (rcvNxt + len + (flags & 1)) >>> 0;
    received += len;
    if (flags & 1 || ++segs % 2 === 0) send(0x10, iss + 1, rcvNxt);
    if (flags & 1) done();
  });
  const t0 = process.hrtime.bigint();
  send(2, iss, 0, true);
  await finished;
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (received !== payload.length) throw new Error(`lean guest: got ${received} bytes`);
  return sizeMiB / secs;
}

async function main(): Promise<void> {
  const { server, port } = await source();
  const rows: Array<[string, number]> = [];
  rows.push(['loopback socket (reference)', await direct(port)]);

  const net0 = await UserNetwork.create({ dnsServers: [] });
  rows.push(['user-net TCP NAT, lean receiver', await leanGuest(port, net0, 42000)]);
  await net0.close();

  const net1 = await UserNetwork.create({ dnsServers: [] });
  rows.push(['user-net TCP NAT, test guest stack', await throughGuest(port, net1, 42001)]);
  await net1.close();

  const net2 = await UserNetwork.create({ dnsServers: [] });
  const mem = GuestMemory.ofSize(64 << 20);
  const irq = new RecordingIrq();
  const dev = new VirtioNet(net2);
  const transport = new VirtioMmioTransport(dev, mem, irq);
  const driver = new TestDriver(transport, mem, irq, new GuestAllocator(0x1000, mem.end));
  driver.init();
  const rig: NetRig = { mem, dev, backend: undefined as never, transport, driver, irq, logs: [] };
  const nic = new GuestNic(rig, 2048, 256);
  rows.push(['user-net TCP NAT, test guest stack over virtio-net', await throughGuest(port, nic, 42002)]);
  await nic.close();
  await net2.close();
  server.close();

  const ref = rows[0]![1];
  console.log(`TCP download of ${sizeMiB} MiB from 127.0.0.1 (one run each):`);
  for (const [name, mibs] of rows) console.log(`  ${name.padEnd(52)} ${mibs.toFixed(1).padStart(8)} MiB/s   ratio ${(mibs / ref).toFixed(3)}`);
}

await main();
