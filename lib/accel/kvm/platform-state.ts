/**
 * The in-kernel platform devices of a KVM machine (8259 PIC pair, IOAPIC, 8254 PIT): their state as KVM reports
 * it, decoded, and a power-on snapshot that a machine reset restores. KVM has no "reset the irqchip" ioctl, and a
 * rebooted guest must not inherit the previous boot's programmed IOAPIC pins, PIC initialisation or running PIT,
 * so the state read right after KVM_CREATE_IRQCHIP / KVM_CREATE_PIT2 is written back instead: exact, whatever the
 * kernel version's reset values are. Layouts: struct kvm_pic_state, kvm_ioapic_state, kvm_pit_state2 (KVM API).
 */
import { Irqchip, type KvmVm } from '../../kvm/index.js';
import { IRQCHIP_STATE_SIZE, PIT_STATE2_SIZE } from '../../kvm/vm.js';

/** struct kvm_pic_state: one 8259. */
export interface PicState {
  lastIrr: number; irr: number; imr: number; isr: number; priorityAdd: number; irqBase: number; readRegSelect: number;
  poll: number; specialMask: number; initState: number; autoEoi: number; rotateOnAutoEoi: number;
  specialFullyNestedMode: number; init4: number; elcr: number; elcrMask: number;
}
const PIC_FIELDS = [
  'lastIrr', 'irr', 'imr', 'isr', 'priorityAdd', 'irqBase', 'readRegSelect', 'poll', 'specialMask', 'initState',
  'autoEoi', 'rotateOnAutoEoi', 'specialFullyNestedMode', 'init4', 'elcr', 'elcrMask',
] as const satisfies readonly (keyof PicState)[];

/** struct kvm_ioapic_state; `redirection` holds the 24 64-bit redirection table entries. */
export interface IoapicState {
  baseAddress: bigint; ioregsel: number; id: number; irr: number; redirection: bigint[];
}
export const KVM_IOAPIC_PINS = 24;
/** Redirection entry bit 16: the pin is masked. */
export const IOAPIC_REDIR_MASKED = 1n << 16n;

/** struct kvm_pit_channel_state. countLoadTime is a host clock reading, not guest-visible state. */
export interface PitChannelState {
  count: number; latchedCount: number; countLatched: number; statusLatched: number; status: number; readState: number;
  writeState: number; writeLatch: number; rwMode: number; mode: number; bcd: number; gate: number; countLoadTime: bigint;
}
/** struct kvm_pit_state2. */
export interface PitState { channels: [PitChannelState, PitChannelState, PitChannelState]; flags: number }
const PIT_CHANNEL_SIZE = 24;

export function decodePicState(b: Uint8Array): PicState {
  const s = {} as Record<keyof PicState, number>;
  PIC_FIELDS.forEach((name, i) => { s[name] = b[i]!; });
  return s;
}

export function decodeIoapicState(b: Uint8Array): IoapicState {
  const v = new DataView(b.buffer, b.byteOffset, IRQCHIP_STATE_SIZE);
  const redirection: bigint[] = [];
  for (let pin = 0; pin < KVM_IOAPIC_PINS; pin++) redirection.push(v.getBigUint64(24 + pin * 8, true));
  return { baseAddress: v.getBigUint64(0, true), ioregsel: v.getUint32(8, true), id: v.getUint32(12, true), irr: v.getUint32(16, true), redirection };
}

export function decodePitState(b: Uint8Array): PitState {
  const v = new DataView(b.buffer, b.byteOffset, PIT_STATE2_SIZE);
  const channel = (o: number): PitChannelState => ({
    count: v.getUint32(o, true), latchedCount: v.getUint16(o + 4, true), countLatched: v.getUint8(o + 6),
    statusLatched: v.getUint8(o + 7), status: v.getUint8(o + 8), readState: v.getUint8(o + 9), writeState: v.getUint8(o + 10),
    writeLatch: v.getUint8(o + 11), rwMode: v.getUint8(o + 12), mode: v.getUint8(o + 13), bcd: v.getUint8(o + 14),
    gate: v.getUint8(o + 15), countLoadTime: v.getBigInt64(o + 16, true),
  });
  return { channels: [channel(0), channel(PIT_CHANNEL_SIZE), channel(2 * PIT_CHANNEL_SIZE)], flags: v.getUint32(3 * PIT_CHANNEL_SIZE, true) };
}

/** Everything the in-kernel platform devices hold, decoded (diagnostics, tests). */
export interface PlatformState {
  picMaster: PicState;
  picSlave: PicState;
  ioapic: IoapicState;
  pit: PitState;
}

/** The raw state of the in-kernel chips at one moment, restorable. */
export class PlatformSnapshot {
  private constructor(
    private readonly picMaster: Uint8Array,
    private readonly picSlave: Uint8Array,
    private readonly ioapic: Uint8Array,
    private readonly pit: Uint8Array,
  ) {}

  /** Reads the irqchip (created with KVM_CREATE_IRQCHIP) and PIT (KVM_CREATE_PIT2) state of `vm`. */
  static capture(vm: KvmVm): PlatformSnapshot {
    return new PlatformSnapshot(vm.getIrqchip(Irqchip.PIC_MASTER), vm.getIrqchip(Irqchip.PIC_SLAVE), vm.getIrqchip(Irqchip.IOAPIC), vm.getPit2());
  }

  /**
   * Writes the snapshot back. The PIT goes first: stopped, it cannot tick into the freshly reset chips and leave
   * a request from the previous boot in them. Interrupt input levels are not part of the state (KVM keeps them
   * per source), so devices lower their own lines when they reset.
   */
  restore(vm: KvmVm): void {
    vm.setPit2(this.pit);
    vm.setIrqchip(Irqchip.PIC_MASTER, this.picMaster);
    vm.setIrqchip(Irqchip.PIC_SLAVE, this.picSlave);
    vm.setIrqchip(Irqchip.IOAPIC, this.ioapic);
  }

  decode(): PlatformState {
    return {
      picMaster: decodePicState(this.picMaster), picSlave: decodePicState(this.picSlave),
      ioapic: decodeIoapicState(this.ioapic), pit: decodePitState(this.pit),
    };
  }
}

/** The in-kernel chips' current state, decoded. */
export function readPlatformState(vm: KvmVm): PlatformState {
  return PlatformSnapshot.capture(vm).decode();
}
