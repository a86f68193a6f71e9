/** PCI: configuration mechanism #1 host bridge, type-0 functions with memory BARs, MSI-X. */
export * from './constants.js';
export { PciFunction, type PciFunctionIdentity, type PciBarSpec, type PciCapabilityHooks } from './pci-function.js';
export { PciHostBridge, HOST_BRIDGE_VENDOR_ID, HOST_BRIDGE_DEVICE_ID, type PciAddress } from './host-bridge.js';
export { MsixCapability, MSIX_MAX_VECTORS, type MsixOptions } from './msix.js';
export { PciBarAllocator } from './bar-allocator.js';
export { pciIntxGsi, PciIntxRouter, PCI_INTX_FIRST_GSI, PCI_INTX_GSI_COUNT } from './intx-routing.js';
