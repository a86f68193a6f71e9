/** virtio-net over the user-mode network, end to end: a test-side guest stack talks through the real device. */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UserNetwork } from '../../lib/net/user/user-network.js';
import { GuestMemory } from '../../lib/machine/guest-memory.js';
import { VirtioNet } from '../../lib/virtio/net/device.js';
import { VirtioMmioTransport } from '../../lib/virtio/mmio.js';
import { featureBit } from '../../lib/virtio/constants.js';
import { NET_F_MAC, NET_F_STATUS } from '../../lib/virtio/net/constants.js';
import { GuestAllocator, RecordingIrq, TestDriver } from './driver.js';
import { GuestNic } from './net-guest-nic.js';
import type { NetRig } from './net-helpers.js';
import { GuestStack, TestTcp, ip, parseUdpDgram } from '../net/guest-stack.js';
import { dhcpMessage, dhcpOptions } from '../net/dhcp-client.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(mergeable: boolean): Promise<{ g: GuestStack; net: UserNetwork; dev: VirtioNet; nic: GuestNic }> {
  const net = await UserNetwork.create({ dnsServers: [] });
  cleanups.push(() => net.close());
  const mem = GuestMemory.ofSize(32 << 20);
  const irq = new RecordingIrq();
  const dev = new VirtioNet(net, { mac: '52:54:00:12:34:56' });
  const transport = new VirtioMmioTransport(dev, mem, irq, { log: (m) => console.error(m) });
  const driver = new TestDriver(transport, mem, irq, new GuestAllocator(0x1000, mem.end));
  driver.init(mergeable ? {} : { features: featureBit(NET_F_MAC) | featureBit(NET_F_STATUS) });
  const rig: NetRig = { mem, dev, backend: undefined as never, transport, driver, irq, logs: [] };
  // Without MRG_RXBUF each buffer must hold a whole frame (header + 1514), like Linux's small buffers.
  const nic = new GuestNic(rig, mergeable ? 512 : 1536, 128);
  cleanups.push(() => nic.close());
  const g = new GuestStack(nic);
  return { g, net, dev, nic };
}

for (const mergeable of [true, false]) {
  describe(`virtio-net + user-mode network (${mergeable ? 'MRG_RXBUF with 512-byte buffers' : 'one buffer per frame'})`, () => {
    it('DHCP through the device, then a 1 MiB HTTP download through the TCP NAT', { timeout: 60_000 }, async () => {
      const big = Buffer.alloc(1 << 20);
      for (let i = 0; i < big.length; i++) big[i] = (i * 5 + (i >>> 10)) & 255;
      const server = createServer((_q, res) => res.end(big));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
      const { g, dev, nic } = await setup(mergeable);

      g.sendUdp(0xffffffff, 68, 67, dhcpMessage(1, 0x4242), 0);
      const offer = await g.waitFor((p) => p.proto === 17 && parseUdpDgram(p.l4).dp === 68, 3000, 'DHCP OFFER');
      const om = parseUdpDgram(offer.l4).data;
      expect(dhcpOptions(om).get(53)).toEqual([2]);
      expect(Array.from(om.subarray(16, 20))).toEqual([10, 0, 2, 15]);
      g.gwMac = offer.srcMac;

      const c = new TestTcp(g, 41000, ip('10.0.2.2'), (server.address() as AddressInfo).port);
      cleanups.push(() => c.dispose());
      await c.connect();
      c.write(new TextEncoder().encode('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      const t0 = process.hrtime.bigint();
      await c.until(() => c.finReceived, 'the response', 60_000);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      const data = Buffer.from(c.data);
      const bodyStart = data.indexOf('\r\n\r\n') + 4;
      expect(createHash('sha256').update(data.subarray(bodyStart)).digest('hex')).toBe(createHash('sha256').update(big).digest('hex'));
      expect(dev.stats.rxDroppedQueueFull).toBe(0);
      expect(dev.stats.rxDroppedTooBig).toBe(0);
      expect(g.errors).toEqual([]);
      console.log(`virtio-net (${mergeable ? 'mrg' : 'single'}): 1 MiB in ${ms.toFixed(0)} ms, ${nic.rxFrames} RX / ${nic.txFrames} TX frames`);
    });
  });
}
