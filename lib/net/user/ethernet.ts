/** Ethernet II framing. */
export const ETH_HEADER_BYTES = 14;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const BROADCAST_MAC = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

export interface EthernetFrame {
  dst: Uint8Array;
  src: Uint8Array;
  etherType: number;
  payload: Uint8Array;
}

/** Views into `frame` (no copies), or null when it is too short. */
export function parseEthernet(frame: Uint8Array): EthernetFrame | null {
  if (frame.length < ETH_HEADER_BYTES) return null;
  return {
    dst: frame.subarray(0, 6),
    src: frame.subarray(6, 12),
    etherType: (frame[12]! << 8) | frame[13]!,
    payload: frame.subarray(ETH_HEADER_BYTES),
  };
}

export function buildEthernet(dst: Uint8Array, src: Uint8Array, etherType: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(ETH_HEADER_BYTES + payload.length);
  f.set(dst.subarray(0, 6), 0);
  f.set(src.subarray(0, 6), 6);
  f[12] = etherType >>> 8;
  f[13] = etherType & 0xff;
  f.set(payload, ETH_HEADER_BYTES);
  return f;
}

export function isBroadcastOrMulticast(mac: Uint8Array): boolean {
  return (mac[0]! & 1) === 1;
}

export function macEquals(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < 6; i++) if (a[i] !== b[i]) return false;
  return true;
}
