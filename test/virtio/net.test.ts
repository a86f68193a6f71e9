import { describe, expect, it } from 'vitest';
import { F_VERSION_1, STATUS_DEVICE_NEEDS_RESET, featureBit } from '../../lib/virtio/constants.js';
import { MMIO } from '../../lib/virtio/mmio.js';
import { NET_F_MAC, NET_F_MRG_RXBUF, NET_F_STATUS, NET_HDR_BYTES, RX_QUEUE, TX_QUEUE } from '../../lib/virtio/net/constants.js';
import { formatMac } from '../../lib/virtio/net/mac.js';
import { netRig, settle, testFrame, type NetRig } from './net-helpers.js';

function configMac(rig: NetRig): string {
  const b = Uint8Array.from({ length: 6 }, (_, i) => rig.transport.read(MMIO.Config + i, 1));
  return formatMac(b);
}

/** Post `count` receive buffers of `size` bytes; returns their guest addresses in posting order. */
function postRx(rig: NetRig, count: number, size: number): number[] {
  const addrs: number[] = [];
  for (let i = 0; i < count; i++) {
    const a = rig.driver.alloc.alloc(size, 16);
    rig.mem.fill(a, size, 0xee);
    rig.driver.queues[RX_QUEUE]!.add([{ addr: a, len: size, write: true }]);
    addrs.push(a);
  }
  rig.driver.notify(RX_QUEUE);
  return addrs;
}

function tx(rig: NetRig, frame: Uint8Array, split = 1): number {
  const { mem, driver } = rig;
  const hdr = driver.alloc.alloc(NET_HDR_BYTES);
  mem.fill(hdr, NET_HDR_BYTES, 0);
  const data = driver.alloc.alloc(frame.length);
  mem.write(data, frame);
  const step = Math.ceil(frame.length / split);
  const bufs = [{ addr: hdr, len: NET_HDR_BYTES, write: false }];
  for (let o = 0; o < frame.length; o += step) bufs.push({ addr: data + o, len: Math.min(step, frame.length - o), write: false });
  const head = driver.queues[TX_QUEUE]!.add(bufs);
  driver.notify(TX_QUEUE);
  return head;
}

describe('virtio-net device', () => {
  it('offers MAC, STATUS, MRG_RXBUF and VERSION_1 with a per-index default MAC and the link up', () => {
    const rig = netRig();
    const f = rig.driver.deviceFeatures();
    for (const bit of [NET_F_MAC, NET_F_STATUS, NET_F_MRG_RXBUF]) expect(f & featureBit(bit)).not.toBe(0n);
    expect(f & featureBit(F_VERSION_1)).not.toBe(0n);
    expect(f & 3n).toBe(0n); // no CSUM / GUEST_CSUM
    expect(rig.transport.read(MMIO.DeviceID, 4)).toBe(1);
    expect(configMac(rig)).toBe('52:54:00:12:34:56');
    expect(rig.transport.read(MMIO.Config + 6, 2)).toBe(1);
    expect(configMac(netRig({ index: 1 }))).toBe('52:54:00:12:34:57');
    expect(configMac(netRig({ index: 0xcbaa }))).toBe('52:54:00:13:00:00');
    expect(configMac(netRig({ mac: '02:00:00:aa:bb:cc' }))).toBe('02:00:00:aa:bb:cc');
    expect(() => netRig({ mac: '01:00:5e:00:00:01' })).toThrow(/multicast/);
    expect(() => netRig({ mac: 'zz' })).toThrow(/mac/);
  });

  it('TX: strips the header and hands the frame (split over descriptors) to the backend', async () => {
    const rig = netRig();
    const frames = [testFrame(60, 1), testFrame(1514, 2), testFrame(9000, 3)];
    for (const [i, f] of frames.entries()) {
      const head = tx(rig, f, i + 1);
      const used = await rig.driver.waitUsed(TX_QUEUE);
      expect(used).toEqual({ id: head, len: 0 });
    }
    expect(rig.backend.sent).toEqual(frames);
    expect(rig.dev.stats.txFrames).toBe(3);
    expect(rig.irq.raises).toBeGreaterThan(0);
  });

  it('TX: a frame shorter than an Ethernet header is dropped and counted, the device keeps running', async () => {
    const rig = netRig();
    tx(rig, new Uint8Array(5));
    await rig.driver.waitUsed(TX_QUEUE);
    expect(rig.backend.sent).toHaveLength(0);
    expect(rig.dev.stats.txDropped).toBe(1);
    expect(rig.driver.status & STATUS_DEVICE_NEEDS_RESET).toBe(0);
  });

  it('RX without MRG_RXBUF: header (num_buffers 1) and frame land in one posted buffer', async () => {
    const rig = netRig({ features: featureBit(NET_F_MAC) | featureBit(NET_F_STATUS) });
    expect(rig.driver.features & featureBit(NET_F_MRG_RXBUF)).toBe(0n);
    const [a] = postRx(rig, 1, 1526);
    const frame = testFrame(1000);
    rig.backend.inject(frame);
    const used = await rig.driver.waitUsed(RX_QUEUE);
    expect(used.len).toBe(NET_HDR_BYTES + 1000);
    const hdr = rig.mem.read(a!, NET_HDR_BYTES);
    expect(Array.from(hdr)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    expect(rig.mem.read(a! + NET_HDR_BYTES, 1000)).toEqual(frame);
    // A frame bigger than the next buffer is dropped; the buffer stays for the next frame.
    postRx(rig, 1, 200);
    rig.backend.inject(testFrame(1000, 2));
    const small = testFrame(100, 3);
    rig.backend.inject(small);
    const used2 = await rig.driver.waitUsed(RX_QUEUE);
    expect(used2.len).toBe(NET_HDR_BYTES + 100);
    expect(rig.dev.stats.rxDroppedTooBig).toBe(1);
  });

  it('RX with MRG_RXBUF: a large frame spans several buffers and num_buffers counts them', async () => {
    const rig = netRig();
    const addrs = postRx(rig, 4, 512);
    const frame = testFrame(1200);
    rig.backend.inject(frame);
    await settle();
    const used = [await rig.driver.waitUsed(RX_QUEUE), await rig.driver.waitUsed(RX_QUEUE), await rig.driver.waitUsed(RX_QUEUE)];
    expect(used.map((u) => u.len)).toEqual([512, 512, 1200 + NET_HDR_BYTES - 1024]);
    expect(rig.mem.readU16(addrs[0]! + 10)).toBe(3);
    const got = new Uint8Array(1200);
    got.set(rig.mem.read(addrs[0]! + NET_HDR_BYTES, 500), 0);
    got.set(rig.mem.read(addrs[1]!, 512), 500);
    got.set(rig.mem.read(addrs[2]!, 188), 1012);
    expect(got).toEqual(frame);
    // The fourth buffer is still available for the next frame.
    rig.backend.inject(testFrame(100, 9));
    expect((await rig.driver.waitUsed(RX_QUEUE)).len).toBe(112);
    expect(rig.mem.readU16(addrs[3]! + 10)).toBe(1);
  });

  it('RX: frames wait until buffers are posted; a full host queue drops and counts', async () => {
    const rig = netRig({ rxQueueFrames: 4 });
    for (let i = 0; i < 10; i++) rig.backend.inject(testFrame(64 + i, i));
    await settle();
    expect(rig.dev.rxQueueLength).toBe(4);
    expect(rig.dev.stats.rxDroppedQueueFull).toBe(6);
    const addrs = postRx(rig, 8, 2048);
    for (let i = 0; i < 4; i++) {
      const u = await rig.driver.waitUsed(RX_QUEUE);
      expect(u.len).toBe(NET_HDR_BYTES + 64 + i);
      expect(rig.mem.read(addrs[i]! + NET_HDR_BYTES, 64 + i)).toEqual(testFrame(64 + i, i));
    }
    expect(rig.dev.rxQueueLength).toBe(0);
    expect(rig.dev.stats.rxFrames).toBe(4);
  });

  it('link down: config-change interrupt, status bit cleared, incoming frames dropped', async () => {
    const rig = netRig();
    rig.driver.ackInterrupt();
    rig.dev.setLinkUp(false);
    expect(rig.transport.read(MMIO.InterruptStatus, 4) & 2).toBe(2);
    expect(rig.transport.read(MMIO.Config + 6, 2)).toBe(0);
    rig.backend.inject(testFrame(64));
    expect(rig.dev.stats.rxDroppedOther).toBe(1);
    rig.dev.setLinkUp(true);
    expect(rig.transport.read(MMIO.Config + 6, 2)).toBe(1);
  });

  describe('malformed chains put the device in NEEDS_RESET', () => {
    const cases: Array<[string, (rig: NetRig) => void]> = [
      ['TX header shorter than 12 bytes', (rig) => {
        const a = rig.driver.alloc.alloc(64);
        rig.driver.queues[TX_QUEUE]!.add([{ addr: a, len: 4, write: false }]);
        rig.driver.notify(TX_QUEUE);
      }],
      ['TX buffer outside RAM', (rig) => {
        rig.driver.queues[TX_QUEUE]!.add([{ addr: rig.mem.end - 8, len: 64, write: false }]);
        rig.driver.notify(TX_QUEUE);
      }],
      ['RX buffer that is device-readable', (rig) => {
        const a = rig.driver.alloc.alloc(2048);
        rig.driver.queues[RX_QUEUE]!.add([{ addr: a, len: 2048, write: false }]);
        rig.driver.notify(RX_QUEUE);
        rig.backend.inject(testFrame(64));
      }],
      ['RX buffer smaller than the header', (rig) => {
        const a = rig.driver.alloc.alloc(16);
        rig.driver.queues[RX_QUEUE]!.add([{ addr: a, len: 8, write: true }]);
        rig.driver.notify(RX_QUEUE);
        rig.backend.inject(testFrame(64));
      }],
      ['RX head index beyond the queue', (rig) => {
        const q = rig.driver.queues[RX_QUEUE]!;
        rig.mem.writeU16(q.avail + 4, 0xffff);
        rig.mem.writeU16(q.avail + 2, 1);
        rig.backend.inject(testFrame(64));
      }],
    ];
    for (const [name, act] of cases) {
      it(name, async () => {
        const rig = netRig();
        act(rig);
        await settle();
        expect(rig.driver.status & STATUS_DEVICE_NEEDS_RESET).toBe(STATUS_DEVICE_NEEDS_RESET);
        expect(rig.transport.read(MMIO.InterruptStatus, 4) & 2).toBe(2);
        expect(rig.logs.join('\n')).toMatch(/needs reset/);
        // A reset and re-initialisation brings the device back.
        rig.driver.alloc.resetAll();
        rig.driver.init();
        expect(rig.driver.status & STATUS_DEVICE_NEEDS_RESET).toBe(0);
        tx(rig, testFrame(60));
        await rig.driver.waitUsed(TX_QUEUE);
        expect(rig.backend.sent).toHaveLength(1);
      });
    }
  });

  it('reset drops frames queued for the old driver', async () => {
    const rig = netRig();
    rig.backend.inject(testFrame(64));
    await settle();
    expect(rig.dev.rxQueueLength).toBe(1);
    rig.transport.write(MMIO.Status, 4, 0);
    expect(rig.dev.rxQueueLength).toBe(0);
  });
});
