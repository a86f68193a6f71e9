/** Public surface of the virtio layer. */
export * from './constants.js';
export type { VirtioDevice, VirtioDeviceContext } from './device.js';
export { readConfigBytes } from './device.js';
export { Virtqueue, VirtqueueError, vringNeedEvent, isValidQueueSize, type DescriptorChain, type VirtqueueFeatures } from './queue.js';
export { VirtioCore, TRANSPORT_FEATURES, type VirtioCoreOptions } from './core.js';
export { VirtioMmioTransport, virtioMmioCmdline, VIRTIO_MMIO_SIZE, VIRTIO_MMIO_MAGIC, MMIO, type VirtioMmioOptions } from './mmio.js';
export { VirtioBlk, type VirtioBlkOptions } from './blk/device.js';
export { VirtioRng, type VirtioRngOptions } from './rng/device.js';
export * from './net/index.js';
