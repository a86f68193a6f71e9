/** virtio-net: device model, constants and MAC helpers. */
export { VirtioNet, type VirtioNetOptions, type VirtioNetStats } from './device.js';
export { defaultMac, parseMac, formatMac, randomMac } from './mac.js';
export * from './constants.js';
