/** Modern virtio-pci (virtio 1.x §4.1) numbers. */

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** Non-transitional devices: PCI device ID = 0x1040 + virtio device ID (§4.1.2.1). */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** Non-transitional devices should have revision >= 1 and subsystem ID >= 0x40 (§4.1.2.1). */
export const VIRTIO_PCI_REVISION = 1;
export const VIRTIO_PCI_SUBSYSTEM_ID = 0x40;

/** virtio_pci_cap.cfg_type (§4.1.4). */
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;

/** Length of struct virtio_pci_cap; the notify and PCI_CFG capabilities add 4 bytes. */
export const VIRTIO_PCI_CAP_LEN = 16;

/** struct virtio_pci_common_cfg (§4.1.4.3) register offsets. */
export const COMMON = {
  DeviceFeatureSelect: 0x00,
  DeviceFeature: 0x04,
  DriverFeatureSelect: 0x08,
  DriverFeature: 0x0c,
  MsixConfig: 0x10,
  NumQueues: 0x12,
  DeviceStatus: 0x14,
  ConfigGeneration: 0x15,
  QueueSelect: 0x16,
  QueueSize: 0x18,
  QueueMsixVector: 0x1a,
  QueueEnable: 0x1c,
  QueueNotifyOff: 0x1e,
  QueueDesc: 0x20,
  QueueDriver: 0x28,
  QueueDevice: 0x30,
} as const;
/** Size of the common configuration structure we implement (through queue_device). */
export const COMMON_CFG_SIZE = 0x38;

/** MSI-X "no vector" (§4.1.4.3). */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** ISR status bits (§4.1.4.5). */
export const ISR_QUEUE = 1;
export const ISR_CONFIG = 2;

/**
 * Our BAR layout: BAR1 (32-bit) holds the MSI-X table and PBA; BAR4 (64-bit, 16 KiB) holds the virtio
 * structures, each in a 4 KiB page of its own: common, ISR, device config, notify.
 */
export const MSIX_BAR = 1;
export const VIRTIO_BAR = 4;
export const VIRTIO_BAR_SIZE = 0x4000;
export const COMMON_OFFSET = 0x0000;
export const ISR_OFFSET = 0x1000;
export const DEVICE_CFG_OFFSET = 0x2000;
export const NOTIFY_OFFSET = 0x3000;
export const REGION_SIZE = 0x1000;
/** Each queue's notify address is NOTIFY_OFFSET + queue_notify_off * multiplier; queue_notify_off = index. */
export const NOTIFY_OFF_MULTIPLIER = 4;
