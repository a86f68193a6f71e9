/** Modern virtio-pci transport. */
export * from './constants.js';
export { VirtioPciTransport, type VirtioPciOptions } from './transport.js';
export { VirtioPciBus, PCI_MMIO_WINDOW_START, PCI_MMIO_WINDOW_END } from './attach.js';
