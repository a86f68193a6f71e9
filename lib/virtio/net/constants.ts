/** virtio-net numbers (virtio 1.x spec 5.1). Feature values are bit numbers. */
export const NET_F_CSUM = 0;
export const NET_F_GUEST_CSUM = 1;
export const NET_F_MTU = 3;
export const NET_F_MAC = 5;
export const NET_F_GUEST_TSO4 = 7;
export const NET_F_HOST_TSO4 = 11;
export const NET_F_MRG_RXBUF = 15;
export const NET_F_STATUS = 16;
export const NET_F_CTRL_VQ = 17;

export const NET_S_LINK_UP = 1;

/** struct virtio_net_hdr with VERSION_1 (always includes num_buffers). */
export const NET_HDR_BYTES = 12;
export const NET_HDR = {
  flags: 0,
  gsoType: 1,
  hdrLen: 2,
  gsoSize: 4,
  csumStart: 6,
  csumOffset: 8,
  numBuffers: 10,
} as const;
export const NET_HDR_GSO_NONE = 0;
export const NET_HDR_F_NEEDS_CSUM = 1;

/** struct virtio_net_config: mac[6], status (u16), max_virtqueue_pairs (u16). */
export const NET_CONFIG = { mac: 0, status: 6, maxVirtqueuePairs: 8, size: 10 } as const;

export const RX_QUEUE = 0;
export const TX_QUEUE = 1;
