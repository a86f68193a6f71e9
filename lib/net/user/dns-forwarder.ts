/**
 * DNS forwarding for queries the guest sends to the virtual DNS address: each query goes, as is, to the
 * host's nameservers (from /etc/resolv.conf unless configured) over UDP, trying them in order; the first
 * answer is relayed back. When no nameserver is configured or none answers in time, the guest gets SERVFAIL
 * promptly instead of waiting for its own timeout.
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';

export interface Nameserver {
  address: string;
  port: number;
}

export interface DnsForwarderOptions {
  /** Upstream servers as "ADDR" or "ADDR:PORT" ("[v6]:PORT" for IPv6). Default: /etc/resolv.conf. */
  servers?: string[];
  /** Per-server timeout before trying the next one (default 2000 ms). */
  timeoutMs?: number;
  /** Queries in flight at once; more are answered with SERVFAIL (default 256). */
  maxInFlight?: number;
}

const DNS_HEADER_BYTES = 12;
const RCODE_SERVFAIL = 2;

export class DnsForwarder {
  readonly servers: Nameserver[];
  readonly stats = { queries: 0, answered: 0, servfail: 0, malformed: 0 };
  private readonly timeoutMs: number;
  private readonly maxInFlight: number;
  private readonly inFlight = new Set<{ socket: Socket; timer: NodeJS.Timeout | undefined }>();
  private closed = false;

  constructor(options: DnsForwarderOptions = {}) {
    this.servers = (options.servers ?? systemNameservers()).map(parseNameserver);
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.maxInFlight = options.maxInFlight ?? 256;
  }

  /** Resolve one raw DNS query; `reply` is called exactly once with the raw response (unless closed). */
  query(message: Uint8Array, reply: (response: Uint8Array) => void): void {
    this.stats.queries++;
    if (message.length < DNS_HEADER_BYTES || message[2]! & 0x80) {
      this.stats.malformed++; // too short, or a response rather than a query
      return;
    }
    if (this.servers.length === 0 || this.inFlight.size >= this.maxInFlight || this.closed) {
      this.fail(message, reply);
      return;
    }
    this.tryServer(message.slice(), 0, reply);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const q of this.inFlight) {
      clearTimeout(q.timer);
      q.socket.close();
    }
    this.inFlight.clear();
  }

  private tryServer(message: Uint8Array, index: number, reply: (response: Uint8Array) => void): void {
    if (this.closed) return;
    if (index >= this.servers.length) {
      this.fail(message, reply);
      return;
    }
    const server = this.servers[index]!;
    const socket = createSocket(isIPv6(server.address) ? 'udp6' : 'udp4');
    const entry: { socket: Socket; timer: NodeJS.Timeout | undefined } = { socket, timer: undefined };
    this.inFlight.add(entry);
    let done = false;
    const finish = (next: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(entry.timer);
      this.inFlight.delete(entry);
      socket.close();
      if (next) this.tryServer(message, index + 1, reply);
    };
    socket.on('message', (msg) => {
      // Only a response to this query (same ID) counts; anything else is ignored.
      if (msg.length < DNS_HEADER_BYTES || msg[0] !== message[0] || msg[1] !== message[1] || !(msg[2]! & 0x80)) return;
      finish(false);
      this.stats.answered++;
      reply(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    // A connected UDP socket reports ICMP port-unreachable as ECONNREFUSED: move on at once.
    socket.on('error', () => finish(true));
    entry.timer = setTimeout(() => finish(true), this.timeoutMs);
    socket.connect(server.port, server.address, () => {
      if (!done) socket.send(message, (err) => err && finish(true));
    });
  }

  private fail(message: Uint8Array, reply: (response: Uint8Array) => void): void {
    this.stats.servfail++;
    reply(servfail(message));
  }
}

/** SERVFAIL for `query`: its header (ID, opcode, RD) and question, no records. */
export function servfail(query: Uint8Array): Uint8Array {
  const qdcount = (query[4]! << 8) | query[5]!;
  let end = DNS_HEADER_BYTES;
  let questions = 0;
  // Keep the question when it parses (a name of labels, then type and class); otherwise send none.
  if (qdcount === 1) {
    let i = DNS_HEADER_BYTES;
    while (i < query.length && query[i] !== 0 && (query[i]! & 0xc0) === 0) i += 1 + query[i]!;
    if (i < query.length && query[i] === 0 && i + 5 <= query.length) {
      end = i + 5;
      questions = 1;
    }
  }
  const r = query.slice(0, end);
  r[2] = 0x80 | (query[2]! & 0x79); // QR, same opcode and RD
  r[3] = 0x80 | RCODE_SERVFAIL; // RA
  r[4] = 0;
  r[5] = questions;
  r.fill(0, 6, 12);
  return r;
}

export function systemNameservers(path = '/etc/resolv.conf'): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m && (isIPv4(m[1]!) || isIPv6(m[1]!))) out.push(isIPv6(m[1]!) ? `[${m[1]}]` : m[1]!);
  }
  return out;
}

export function parseNameserver(s: string): Nameserver {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6 && isIPv6(v6[1]!)) return { address: v6[1]!, port: v6[2] ? Number(v6[2]) : 53 };
  const v4 = /^([\d.]+)(?::(\d+))?$/.exec(s);
  if (v4 && isIPv4(v4[1]!)) {
    const port = v4[2] ? Number(v4[2]) : 53;
    if (port >= 1 && port <= 65535) return { address: v4[1]!, port };
  }
  if (isIPv6(s)) return { address: s, port: 53 };
  throw new RangeError(`dns server: "${s}" is not ADDRESS or ADDRESS:PORT`);
}
