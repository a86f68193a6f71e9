/** ARP for IPv4 over Ethernet (RFC 826). */
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;
const ARP_BYTES = 28;

export interface ArpPacket {
  op: number;
  senderMac: Uint8Array;
  senderIp: number;
  targetMac: Uint8Array;
  targetIp: number;
}

export function parseArp(p: Uint8Array): ArpPacket | null {
  if (p.length < ARP_BYTES) return null;
  const dv = new DataView(p.buffer, p.byteOffset, p.byteLength);
  // Ethernet hardware (1), IPv4 protocol (0x0800), 6-byte and 4-byte addresses.
  if (dv.getUint16(0) !== 1 || dv.getUint16(2) !== 0x0800 || p[4] !== 6 || p[5] !== 4) return null;
  return {
    op: dv.getUint16(6),
    senderMac: p.slice(8, 14),
    senderIp: dv.getUint32(14),
    targetMac: p.slice(18, 24),
    targetIp: dv.getUint32(24),
  };
}

export function buildArp(a: ArpPacket): Uint8Array {
  const p = new Uint8Array(ARP_BYTES);
  const dv = new DataView(p.buffer);
  dv.setUint16(0, 1);
  dv.setUint16(2, 0x0800);
  p[4] = 6;
  p[5] = 4;
  dv.setUint16(6, a.op);
  p.set(a.senderMac.subarray(0, 6), 8);
  dv.setUint32(14, a.senderIp >>> 0);
  p.set(a.targetMac.subarray(0, 6), 18);
  dv.setUint32(24, a.targetIp >>> 0);
  return p;
}
