/** PCI Local Bus 3.0 configuration-space facts used by the host bridge and its functions. */

/** Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2): CONFIG_ADDRESS at 0xcf8, CONFIG_DATA at 0xcfc-0xcff. */
export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
/** Ports 0xcf8..0xcff, claimed as one range. */
export const PCI_CONFIG_PORT_COUNT = 8;
export const PCI_CONFIG_ENABLE = 0x8000_0000;

export const PCI_CONFIG_SPACE_SIZE = 256;
/** Devices per bus (the 5-bit device number of CONFIG_ADDRESS). */
export const PCI_SLOTS = 32;

// Type 0 header register offsets.
export const PCI_VENDOR_ID = 0x00;
export const PCI_DEVICE_ID = 0x02;
export const PCI_COMMAND = 0x04;
export const PCI_STATUS = 0x06;
export const PCI_REVISION_ID = 0x08;
/** Programming interface (0x09), subclass (0x0a), class (0x0b): read as one 24-bit class code. */
export const PCI_CLASS_PROG = 0x09;
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BAR0 = 0x10;
export const PCI_BAR_COUNT = 6;
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34;
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d;
/** First byte after the standard header: capabilities go from here. */
export const PCI_CAPABILITIES_START = 0x40;

// Command register bits.
export const PCI_COMMAND_IO = 1 << 0;
export const PCI_COMMAND_MEMORY = 1 << 1;
export const PCI_COMMAND_MASTER = 1 << 2;
export const PCI_COMMAND_PARITY = 1 << 6;
export const PCI_COMMAND_SERR = 1 << 8;
export const PCI_COMMAND_INTX_DISABLE = 1 << 10;
/** The command bits our functions implement (everything else reads as 0). */
export const PCI_COMMAND_WRITABLE =
  PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;

// Status register bits.
export const PCI_STATUS_INTERRUPT = 1 << 3;
export const PCI_STATUS_CAP_LIST = 1 << 4;

// Memory BAR low bits.
export const PCI_BAR_MEM_TYPE_64 = 0x4;
export const PCI_BAR_MEM_PREFETCH = 0x8;

// Capability IDs.
export const PCI_CAP_ID_MSIX = 0x11;
export const PCI_CAP_ID_VENDOR = 0x09;

// Class codes (class << 16 | subclass << 8 | prog-if).
export const PCI_CLASS_BRIDGE_HOST = 0x060000;
export const PCI_CLASS_STORAGE_OTHER = 0x018000;
export const PCI_CLASS_NETWORK_ETHERNET = 0x020000;
export const PCI_CLASS_OTHERS = 0xff0000;
