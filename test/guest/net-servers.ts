/**
 * Host-side peers for the guest network tests, all on this machine: an HTTP server on loopback that serves
 * fixed bodies and records uploads, a small authoritative DNS server over UDP, and a free-port finder.
 */
import { createHash } from 'node:crypto';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { connect, createServer, type AddressInfo } from 'node:net';

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A TCP port that was free a moment ago on `host` (bind port 0, note it, release it). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => { probe.once('error', reject); probe.listen(0, host, resolve); });
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export interface HttpRequestRecord {
  method: string;
  url: string;
  remoteAddress: string;
  userAgent: string;
  body: Buffer;
  /** Wall-clock milliseconds from the request's arrival to the end of the response (or of the upload). */
  ms: number;
}

/** HTTP server: GET path → fixed body; POST/PUT bodies are recorded (and answered with their sha256). */
export class TestHttpServer {
  readonly requests: HttpRequestRecord[] = [];
  private constructor(private readonly server: Server, readonly host: string, readonly port: number) {}

  static async start(routes: Record<string, Buffer>, host = '127.0.0.1'): Promise<TestHttpServer> {
    let self: TestHttpServer | undefined;
    const server = createHttpServer((req, res) => {
      const t0 = performance.now();
      void readAll(req).then((body) => {
        const record = (): void => {
          self?.requests.push({
            method: req.method ?? '', url: req.url ?? '', remoteAddress: req.socket.remoteAddress ?? '',
            userAgent: String(req.headers['user-agent'] ?? ''), body, ms: performance.now() - t0,
          });
        };
        if (req.method === 'POST' || req.method === 'PUT') {
          record();
          res.end(`${sha256(body)}\n`);
          return;
        }
        const content = routes[req.url ?? ''];
        if (!content) {
          record();
          res.statusCode = 404;
          res.end('not found\n');
          return;
        }
        res.setHeader('content-type', 'application/octet-stream');
        res.setHeader('content-length', content.length);
        res.end(content, () => record());
      });
    });
    await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(0, host, resolve); });
    self = new TestHttpServer(server, host, (server.address() as AddressInfo).port);
    return self;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export interface DnsQueryRecord {
  name: string;
  type: number;
  from: string;
}

const DNS_TYPE_A = 1;
const DNS_CLASS_IN = 1;

/**
 * A tiny authoritative DNS server over UDP: A records for the names it is given (case-insensitive), NXDOMAIN
 * for other names, an empty answer for other types of a known name. It records every question it sees.
 */
export class TestDnsServer {
  readonly queries: DnsQueryRecord[] = [];
  private constructor(private readonly socket: UdpSocket, readonly port: number, private readonly records: Map<string, string>) {}

  static async start(records: Record<string, string>, host = '127.0.0.1'): Promise<TestDnsServer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => { socket.once('error', reject); socket.bind(0, host, resolve); });
    const map = new Map(Object.entries(records).map(([k, v]) => [k.toLowerCase(), v]));
    const server = new TestDnsServer(socket, socket.address().port, map);
    socket.on('message', (msg, rinfo) => {
      const reply = server.answer(msg, `${rinfo.address}:${rinfo.port}`);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    });
    return server;
  }

  /** The reply to one query, or undefined for packets that are not a single-question standard query. */
  private answer(msg: Buffer, from: string): Buffer | undefined {
    if (msg.length < 12) return undefined;
    const flags = msg.readUInt16BE(2);
    const qdcount = msg.readUInt16BE(4);
    if (flags & 0x8000 || ((flags >> 11) & 0xf) !== 0 || qdcount !== 1) return undefined;
    const labels: string[] = [];
    let at = 12;
    for (;;) {
      if (at >= msg.length) return undefined;
      const len = msg[at]!;
      at++;
      if (len === 0) break;
      if (len > 63 || at + len > msg.length) return undefined;
      labels.push(msg.subarray(at, at + len).toString('latin1'));
      at += len;
    }
    if (at + 4 > msg.length) return undefined;
    const type = msg.readUInt16BE(at);
    const qclass = msg.readUInt16BE(at + 2);
    const questionEnd = at + 4;
    const name = labels.join('.').toLowerCase();
    this.queries.push({ name, type, from });

    const address = this.records.get(name);
    const answers: Buffer[] = [];
    if (address !== undefined && type === DNS_TYPE_A && qclass === DNS_CLASS_IN) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // name: pointer to the question's name at offset 12
      rr.writeUInt16BE(DNS_TYPE_A, 2);
      rr.writeUInt16BE(DNS_CLASS_IN, 4);
      rr.writeUInt32BE(60, 6); // TTL
      rr.writeUInt16BE(4, 10);
      address.split('.').forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i));
      answers.push(rr);
    }
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0); // same ID
    const rd = flags & 0x0100;
    const rcode = address === undefined ? 3 : 0; // NXDOMAIN for unknown names
    header.writeUInt16BE(0x8000 | 0x0400 | rd | rcode, 2); // QR, AA, RD copied
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    return Buffer.concat([header, msg.subarray(12, questionEnd), ...answers]);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Connects to host:port, sends `payload`, reads until `expectBytes` arrived, then ends; resolves with them. */
export function exchange(host: string, port: number, payload: Buffer, expectBytes: number, timeoutMs = 120_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const socket = connect(port, host);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`exchange with ${host}:${port}: ${got} of ${expectBytes} bytes after ${timeoutMs} ms`)); }, timeoutMs);
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= expectBytes) socket.end();
    });
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)); });
    socket.on('error', (e) => { clearTimeout(timer); reject(e); });
    socket.write(payload);
  });
}

/** A raw HTTP/1.0 GET (no keep-alive, no redirects): status and body. */
export function httpGet(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    let text = '';
    socket.on('data', (c: Buffer) => { text += c.toString('latin1'); });
    socket.on('end', () => {
      const m = /^HTTP\/1\.[01] (\d{3})[^\n]*\n[\s\S]*?\r?\n\r?\n([\s\S]*)$/.exec(text);
      if (!m) reject(new Error(`not an HTTP response: ${JSON.stringify(text.slice(0, 200))}`));
      else resolve({ status: Number(m[1]), body: m[2]! });
    });
    socket.on('error', reject);
    socket.write(`GET ${path} HTTP/1.0\r\nHost: guest\r\n\r\n`);
  });
}
