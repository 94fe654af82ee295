import { createServer, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';

/** What a forward proxy saw: CONNECT tunnels and absolute-URI requests, with their headers. */
export interface ProxiedRequest {
  kind: 'connect' | 'forward';
  /** `host:port` for CONNECT, the absolute URI otherwise. */
  target: string;
  method: string;
  headers: IncomingHttpHeaders;
  /** The answer the proxy gave (407 without the right credential, 502 for a name it cannot resolve). */
  status: number;
}

export interface ForwardProxy {
  /** `http://127.0.0.1:PORT` */
  url: string;
  seen: ProxiedRequest[];
  stop(): Promise<void>;
}

/**
 * A forward proxy as corporate egress proxies behave: `CONNECT host:port` opens a tunnel,
 * absolute-URI requests are forwarded (hop-by-hop and `Proxy-Authorization` headers dropped).
 * It resolves the names in `hosts` itself (to 127.0.0.1): nothing else on the machine knows them,
 * so a request that reaches them went through this proxy. With `credential` it answers 407 to
 * requests without that Basic `Proxy-Authorization`. Other names than `hosts` and 127.0.0.1 get 502.
 */
export async function startForwardProxy(opts: { hosts: string[]; credential?: { username: string; password: string } }): Promise<ForwardProxy> {
  const seen: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const known = new Set(opts.hosts.map((h) => h.toLowerCase()));
  const expected = opts.credential ? `Basic ${Buffer.from(`${opts.credential.username}:${opts.credential.password}`).toString('base64')}` : undefined;
  const resolve = (hostname: string): string | undefined => (known.has(hostname.toLowerCase()) || hostname === '127.0.0.1' ? '127.0.0.1' : undefined);
  const authorized = (headers: IncomingHttpHeaders) => expected === undefined || headers['proxy-authorization'] === expected;

  const server = createServer((req, res) => {
    const entry: ProxiedRequest = { kind: 'forward', target: req.url ?? '', method: req.method ?? '', headers: req.headers, status: 0 };
    seen.push(entry);
    const answer = (status: number, extra: Record<string, string> = {}) => {
      entry.status = status;
      res.writeHead(status, { 'content-length': '0', ...extra }).end();
      req.resume();
    };
    if (!authorized(req.headers)) return answer(407, { 'proxy-authenticate': 'Basic realm="test proxy"' });
    let target: URL;
    try {
      target = new URL(req.url ?? '');
    } catch {
      return answer(400);
    }
    const address = resolve(target.hostname);
    if (!address || target.protocol !== 'http:') return answer(502);
    const headers = { ...req.headers };
    for (const h of ['proxy-authorization', 'proxy-connection', 'connection', 'keep-alive']) delete headers[h];
    const upstream = httpRequest(
      { host: address, port: Number(target.port) || 80, method: req.method, path: `${target.pathname}${target.search}`, headers },
      (up) => {
        entry.status = up.statusCode ?? 0;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => (res.headersSent ? res.destroy() : answer(502)));
    req.pipe(upstream);
  });

  server.on('connect', (req, client: Socket, head: Buffer) => {
    const entry: ProxiedRequest = { kind: 'connect', target: req.url ?? '', method: 'CONNECT', headers: req.headers, status: 0 };
    seen.push(entry);
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const refuse = (status: number, reason: string, extra = '') => {
      entry.status = status;
      client.end(`HTTP/1.1 ${status} ${reason}\r\n${extra}Content-Length: 0\r\n\r\n`);
    };
    if (!authorized(req.headers)) return refuse(407, 'Proxy Authentication Required', 'Proxy-Authenticate: Basic realm="test proxy"\r\n');
    const m = /^(.+):(\d+)$/.exec(req.url ?? '');
    const address = m ? resolve(m[1]!) : undefined;
    if (!m || !address) return refuse(502, 'Bad Gateway');
    const upstream = connect(Number(m[2]), address, () => {
      entry.status = 200;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('close', () => {
      sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => (entry.status === 0 ? refuse(502, 'Bad Gateway') : client.destroy()));
    client.on('close', () => upstream.destroy());
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const addr = server.address();
  if (typeof addr !== 'object' || !addr) throw new Error('proxy has no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    seen,
    stop: () =>
      new Promise<void>((ok) => {
        for (const s of sockets) s.destroy();
        server.close(() => ok());
      }),
  };
}
