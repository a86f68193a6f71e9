/**
 * Drives machine-level timed devices (the CMOS RTC) from the event loop: one setTimeout at the group's next
 * deadline. Devices whose deadline changes after a guest register write call kick().
 */
import type { PlatformClock, TimedDevice } from '../devices/platform-clock.js';

/** Longest single sleep: deadlines far away are re-checked now and then (a paused clock moves them). */
const MAX_SLEEP_MS = 1000;

export class TimerPump {
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly clock: PlatformClock, private readonly device: TimedDevice) {}

  start(): void {
    this.running = true;
    this.kick();
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Poll now and re-arm at the next deadline. */
  kick(): void {
    if (!this.running) return;
    if (this.timer) clearTimeout(this.timer);
    const now = this.clock.nowNs();
    this.device.poll(now);
    const next = this.device.nextDeadlineNs();
    if (next === undefined) {
      this.timer = undefined;
      return;
    }
    const ms = Math.min(MAX_SLEEP_MS, Math.max(0, (next - this.clock.nowNs()) / 1e6));
    this.timer = setTimeout(() => this.kick(), ms);
    this.timer.unref();
  }
}
