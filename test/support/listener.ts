import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** A request a listener received (headers as sent, lowercase names). */
export interface Received {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
}

/** A small HTTP listener that records every connection and request: proof of what reached it. */
export interface RecordingListener {
  /** `ADDRESS:PORT` */
  host: string;
  port: number;
  /** `http://ADDRESS:PORT` */
  url: string;
  /** TCP connections accepted so far. */
  connections: number;
  requests: Received[];
  /** Every `Authorization` header received. */
  authorizations(): string[];
  stop(): Promise<void>;
}

/**
 * Starts a listener on `address` (127.0.0.1 by default; any 127.x address works on Linux).
 * `handler` answers; by default 200 `{}`. A handler may leave a request unanswered.
 */
export async function startListener(handler?: (req: IncomingMessage, res: ServerResponse, self: RecordingListener) => void, address = '127.0.0.1'): Promise<RecordingListener> {
  const sockets = new Set<Socket>();
  const self: RecordingListener = {
    host: '',
    port: 0,
    url: '',
    connections: 0,
    requests: [],
    authorizations: () => self.requests.map((r) => r.headers.authorization).filter((a): a is string => typeof a === 'string'),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = createServer((req, res) => {
    self.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    req.resume();
    if (handler) return handler(req, res, self);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
  server.on('connection', (s: Socket) => {
    self.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, address, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  Object.assign(self, { host: `${address}:${port}`, port, url: `http://${address}:${port}` });
  return self;
}
