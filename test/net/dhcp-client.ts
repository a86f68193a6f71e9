/** Test-side DHCP client messages (RFC 2131) and option parsing. */
import { GUEST_MAC } from './guest-stack.js';

export function dhcpMessage(type: number, xid: number, extra: number[] = [], ciaddr = [0, 0, 0, 0]): Uint8Array {
  const m = new Uint8Array(300);
  m[0] = 1;
  m[1] = 1;
  m[2] = 6;
  m.set([xid >>> 24, (xid >>> 16) & 255, (xid >>> 8) & 255, xid & 255], 4);
  m[10] = 0x80; // broadcast flag, as udhcpc sets it
  m.set(ciaddr, 12);
  m.set(GUEST_MAC, 28);
  m.set([99, 130, 83, 99], 236);
  m.set([53, 1, type, 55, 4, 1, 3, 6, 51, ...extra, 255], 240);
  return m;
}

export function dhcpOptions(msg: Uint8Array): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let i = 240; i < msg.length; ) {
    const c = msg[i]!;
    if (c === 255) break;
    if (c === 0) { i++; continue; }
    const len = msg[i + 1]!;
    out.set(c, Array.from(msg.subarray(i + 2, i + 2 + len)));
    i += 2 + len;
  }
  return out;
}
