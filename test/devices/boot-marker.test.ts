import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import { BOOT_MARKER_PORT, BootMarker, formatBootMarker, type BootMarkerEvent } from '../../lib/devices/boot-marker.js';

describe('boot marker', () => {
  it('records the elapsed time since start from the injected clock', () => {
    let now = 1000;
    const seen: BootMarkerEvent[] = [];
    const marker = new BootMarker({ nowMs: () => now, onMarker: (e) => seen.push(e) });
    const bus = new Bus('pio');
    bus.register(BOOT_MARKER_PORT, 1, marker, 'boot-marker');
    now = 1500;
    marker.start(); // the vCPUs start here
    now = 2312;
    bus.write(BOOT_MARKER_PORT, 1, 1);
    now = 2400.5;
    bus.write(BOOT_MARKER_PORT, 1, 0x102);
    expect(seen).toEqual([
      { value: 1, elapsedMs: 812 },
      { value: 2, elapsedMs: 900.5 },
    ]);
    expect(marker.events).toEqual(seen);
    expect(formatBootMarker(seen[0]!)).toBe('nodevmm: guest reached boot marker 1 after 812 ms');
    expect(formatBootMarker(seen[1]!)).toBe('nodevmm: guest reached boot marker 2 after 901 ms');
    expect(bus.read(BOOT_MARKER_PORT, 1)).toBe(0xff);
  });

  it('counts from construction when start() is never called', () => {
    let now = 50;
    const marker = new BootMarker({ nowMs: () => now });
    now = 75;
    marker.write(0, 1, 7);
    expect(marker.events).toEqual([{ value: 7, elapsedMs: 25 }]);
  });
});
