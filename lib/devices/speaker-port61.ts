/**
 * Port 0x61, "system control port B" of the PC/AT: PIT channel 2's GATE and OUT, the speaker enable, and the
 * refresh-request toggle. Linux's pit_calibrate_tsc and quick_pit_calibrate use it to run channel 2 while the
 * speaker is off; delay loops in old code wait on the refresh toggle.
 *
 *   bit 0  RW  PIT channel 2 GATE
 *   bit 1  RW  speaker data enable (no sound is produced; the bit just reads back)
 *   bit 2  RW  parity check disable (reads back)
 *   bit 3  RW  I/O channel check disable (reads back)
 *   bit 4  RO  refresh request: toggles every 15.085 µs of virtual time
 *   bit 5  RO  PIT channel 2 OUT
 *   bit 6  RO  I/O channel check (never set: no NMI sources)
 *   bit 7  RO  parity error (never set)
 */
import type { Bus, BusDevice } from '../machine/bus.js';
import type { PlatformClock } from './platform-clock.js';
import type { Pit8254 } from './pit8254.js';

export const PORT61 = 0x61;
const REFRESH_PERIOD_NS = 15_085;

export interface SpeakerPort61Options {
  pit: Pit8254;
  clock: PlatformClock;
}

export class SpeakerPort61 implements BusDevice {
  private readonly pit: Pit8254;
  private readonly clock: PlatformClock;
  /** Bits 1-3 as last written. */
  private control = 0;

  constructor(options: SpeakerPort61Options) {
    this.pit = options.pit;
    this.clock = options.clock;
  }

  attach(pio: Bus): void {
    pio.register(PORT61, 1, this, 'port61');
  }

  read(_offset: number, _size: number): number {
    const refresh = Math.floor(this.clock.nowNs() / REFRESH_PERIOD_NS) & 1;
    return (this.pit.gate2 ? 1 : 0) | this.control | (refresh << 4) | (this.pit.out2() ? 0x20 : 0);
  }

  write(_offset: number, _size: number, value: number): void {
    this.control = value & 0x0e;
    this.pit.setGate2((value & 1) !== 0);
  }

  /** Whether the guest has the speaker on (gate and data enable both set). */
  get speakerOn(): boolean {
    return this.pit.gate2 && (this.control & 0x02) !== 0;
  }
}
