import { describe, expect, it } from 'vitest';
import { Bus } from '../../lib/machine/bus.js';
import { DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_LENGTH, DebugExit, processExitStatus } from '../../lib/devices/debug-exit.js';
import { PortSink, POST_CODE_PORT } from '../../lib/devices/port-sink.js';

function withBus() {
  const exits: Array<[number, number]> = [];
  const bus = new Bus('pio');
  bus.register(DEBUG_EXIT_PORT, DEBUG_EXIT_PORT_LENGTH, new DebugExit({ onExit: (s, c) => exits.push([s, c]) }), 'debug-exit');
  return { bus, exits };
}

describe('isa-debug-exit', () => {
  it('maps a written code to (code << 1) | 1: 0x31 -> 0x63', () => {
    const { bus, exits } = withBus();
    bus.write(DEBUG_EXIT_PORT, 4, 0x31);
    expect(exits).toEqual([[0x63, 0x31]]);
  });

  it('code 0 gives status 1 (distinct from a clean power-off); byte and word writes work', () => {
    const { bus, exits } = withBus();
    bus.write(DEBUG_EXIT_PORT, 1, 0x00);
    bus.write(DEBUG_EXIT_PORT, 2, 0x1234);
    bus.write(DEBUG_EXIT_PORT, 1, 0x1ff); // only the byte written counts
    expect(exits).toEqual([[1, 0], [0x2469, 0x1234], [0x1ff, 0xff]]);
  });

  it('a full 32-bit code does not wrap negative; the process sees the low 8 bits', () => {
    const { bus, exits } = withBus();
    bus.write(DEBUG_EXIT_PORT, 4, 0xffffffff);
    expect(exits[0]![0]).toBe(0x1fffffffe + 1);
    expect(processExitStatus(exits[0]![0])).toBe(0xff);
    expect(processExitStatus(0x63)).toBe(0x63);
  });

  it('reads return all ones', () => {
    const { bus } = withBus();
    expect(bus.read(DEBUG_EXIT_PORT, 1)).toBe(0xff);
    expect(bus.read(DEBUG_EXIT_PORT, 4)).toBe(0xffffffff);
  });
});

describe('port sink', () => {
  it('swallows writes (remembering the last POST code) and reads as an idle bus', () => {
    const sink = new PortSink();
    const bus = new Bus('pio');
    bus.register(POST_CODE_PORT, 1, sink, 'post');
    bus.write(POST_CODE_PORT, 1, 0x42);
    expect(sink.lastWrite).toBe(0x42);
    expect(bus.read(POST_CODE_PORT, 1)).toBe(0xff);
  });
});
