import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** What the proxy does to a matching request instead of (or while) forwarding it. */
export type Fault =
  /** Answer this status without forwarding (e.g. 500, or 429 with Retry-After). */
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, then cut the connection after `afterBytes` bytes of the response body. */
  | { kind: 'drop-response'; afterBytes: number }
  /** Forward, but cut the connection after `afterBytes` bytes of the request body arrived. */
  | { kind: 'drop-request'; afterBytes: number }
  /** Forward, flipping one byte of the response body at `atByte` (a corrupt blob). */
  | { kind: 'corrupt-response'; atByte: number }
  /** Forward, adding these headers to the response (e.g. `OCI-Chunk-Min-Length`). */
  | { kind: 'add-headers'; headers: Record<string, string> }
  /** Forward the response at most `bytesPerSecond`. */
  | { kind: 'throttle'; bytesPerSecond: number }
  /** Answer 307 to `location(path)`: object storage on another host. */
  | { kind: 'redirect'; location: (pathAndQuery: string) => string }
  /** Run `hook` first (e.g. push a tag at the source at this very moment), then forward. */
  | { kind: 'before'; hook: () => Promise<void> };

/** A fault applied to requests matching `method` and `path`, `times` times (default once). */
export interface FaultRule {
  method?: string;
  path: RegExp;
  fault: Fault;
  times?: number;
}

/** One request as the proxy saw it. */
export interface ProxyLogEntry {
  method: string;
  path: string;
  status: number;
  headers: IncomingHttpHeaders;
  requestBytes: number;
  responseBytes: number;
  fault?: Fault['kind'];
  /** The response's Location header, if any (upload sessions). */
  location?: string;
  at: number;
  /** When the answer was fully sent (or the connection closed). */
  endedAt?: number;
}

/** A reverse proxy in front of a real registry that injects faults. */
export interface FaultProxy {
  host: string;
  port: number;
  url: string;
  log: ProxyLogEntry[];
  add(rule: FaultRule): void;
  /** Response body bytes sent for requests whose path matches. */
  bytesServed(path: RegExp, method?: string): number;
  stop(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 forwarding to `upstream` (`host:port`), keeping the Host header so
 * the registry's absolute `Location`s point back at the proxy. `addHeaders` are set on every
 * upstream request (object-storage stand-in with its own credentials).
 */
export async function startFaultProxy(upstream: string, opts: { addHeaders?: Record<string, string> } = {}): Promise<FaultProxy> {
  const [upHost, upPort] = upstream.split(':') as [string, string];
  const rules: Array<FaultRule & { left: number }> = [];
  const log: ProxyLogEntry[] = [];
  const sockets = new Set<Socket>();

  const server: Server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const rule = rules.find((r) => r.left > 0 && (!r.method || r.method === method) && r.path.test(path));
    if (rule) rule.left -= 1;
    const fault = rule?.fault;
    const entry: ProxyLogEntry = { method, path, status: 0, headers: req.headers, requestBytes: 0, responseBytes: 0, at: Date.now() };
    if (fault) entry.fault = fault.kind;
    log.push(entry);
    res.on('close', () => (entry.endedAt = Date.now()));

    if (fault?.kind === 'status' || fault?.kind === 'redirect') {
      req.resume();
      req.on('end', () => {
        if (fault.kind === 'status') {
          entry.status = fault.status;
          res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
          res.end(fault.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${fault.status}` }] }));
        } else {
          entry.status = 307;
          res.writeHead(307, { location: fault.location(path), 'content-length': '0' });
          res.end();
        }
      });
      return;
    }

    if (fault?.kind === 'before') {
      // Hold the request (its body stays in the socket's buffer) until the hook is done.
      req.pause();
      fault.hook().then(
        () => forward(),
        () => res.socket?.destroy(),
      );
      return;
    }
    forward();

    function forward(): void {
      const headers = { ...req.headers, ...opts.addHeaders };
      const up = httpRequest({ host: upHost, port: Number(upPort), method, path, headers }, (upRes) => {
        entry.status = upRes.statusCode ?? 0;
        if (upRes.headers.location) entry.location = upRes.headers.location;
        res.writeHead(upRes.statusCode ?? 502, fault?.kind === 'add-headers' ? { ...upRes.headers, ...fault.headers } : upRes.headers);
        if (fault?.kind === 'drop-response') {
          upRes.on('data', (chunk: Buffer) => {
            const room = fault.afterBytes - entry.responseBytes;
            if (room <= 0) return;
            const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
            entry.responseBytes += part.length;
            res.write(part);
            if (entry.responseBytes >= fault.afterBytes) {
              upRes.destroy();
              // Let the bytes leave, then cut the connection mid-body.
              setTimeout(() => res.socket?.destroy(), 20);
            }
          });
          return;
        }
        if (fault?.kind === 'corrupt-response') {
          upRes.on('data', (chunk: Buffer) => {
            const at = fault.atByte - entry.responseBytes;
            if (at >= 0 && at < chunk.length) {
              chunk = Buffer.from(chunk);
              chunk[at] = chunk[at]! ^ 0xff;
            }
            entry.responseBytes += chunk.length;
            res.write(chunk);
          });
          upRes.on('end', () => res.end());
          return;
        }
        if (fault?.kind === 'throttle') {
          upRes.on('data', (chunk: Buffer) => {
            upRes.pause();
            entry.responseBytes += chunk.length;
            res.write(chunk);
            setTimeout(() => upRes.resume(), (chunk.length / fault.bytesPerSecond) * 1000);
          });
          upRes.on('end', () => res.end());
          return;
        }
        upRes.on('data', (chunk: Buffer) => {
          entry.responseBytes += chunk.length;
        });
        upRes.pipe(res);
      });
      up.on('error', () => res.socket?.destroy());
      req.on('data', (chunk: Buffer) => {
        entry.requestBytes += chunk.length;
        if (fault?.kind === 'drop-request' && entry.requestBytes >= fault.afterBytes) {
          up.destroy();
          req.socket.destroy();
        }
      });
      req.pipe(up);
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    port,
    url: `http://127.0.0.1:${port}`,
    log,
    add: (rule) => rules.push({ ...rule, left: rule.times ?? 1 }),
    bytesServed: (path, method = 'GET') =>
      log.filter((e) => e.method === method && path.test(e.path)).reduce((n, e) => n + e.responseBytes, 0),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
