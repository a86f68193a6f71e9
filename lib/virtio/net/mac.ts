/** MAC address helpers for virtio-net. */
import { randomBytes } from 'node:crypto';

/** The default address of NIC `index`: locally administered 52:54:00:12:xx:xx, distinct per index (0..65535). */
export function defaultMac(index: number): Uint8Array {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff) throw new RangeError(`NIC index ${index} is not in 0..65535`);
  const n = (0x3456 + index) & 0xffff;
  return Uint8Array.of(0x52, 0x54, 0x00, 0x12 + ((0x3456 + index) >>> 16), n >>> 8, n & 0xff);
}

/** A random address in the same locally administered 52:54:00 block (24 random bits). */
export function randomMac(): Uint8Array {
  const r = randomBytes(3);
  return Uint8Array.of(0x52, 0x54, 0x00, r[0]!, r[1]!, r[2]!);
}

/** "52:54:00:12:34:56" (or with '-') → 6 bytes. Rejects multicast addresses, which a NIC cannot own. */
export function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(text.trim());
  if (!m) throw new RangeError(`mac: "${text}" is not a MAC address like 52:54:00:12:34:56`);
  const bytes = Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]].map((h) => parseInt(h!, 16)));
  if (bytes[0]! & 1) throw new RangeError(`mac: "${text}" is a multicast address`);
  return bytes;
}

export function formatMac(mac: Uint8Array): string {
  return Array.from(mac.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(':');
}
