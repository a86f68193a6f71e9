/** Modern virtio-pci transport. */
export * from './constants.js';
export { VirtioPciTransport, type VirtioPciOptions } from './transport.js';
