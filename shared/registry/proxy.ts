import { isIP } from 'node:net';
import { Dispatcher, ProxyAgent } from 'undici';
import { AddressRefusedError, type AddressRule } from './address-policy.js';

/**
 * A forward proxy for registry traffic, as curl, skopeo and docker take it: `HTTPS_PROXY` for
 * https URLs (a CONNECT tunnel), `HTTP_PROXY` for http URLs (absolute-URI requests), `NO_PROXY`
 * for hosts reached directly. A registry's own `proxy_url` overrides the environment.
 */
export interface ProxySettings {
  httpProxy?: string | undefined;
  httpsProxy?: string | undefined;
  noProxy?: string | undefined;
  /** The proxy's own `Proxy-Authorization` (from a secret). Registry credentials never go here. */
  authorization?: string | undefined;
}

/** The proxy settings of the environment (lowercase names first, as curl reads them); undefined without any. */
export function proxyFromEnv(env: NodeJS.ProcessEnv = process.env): ProxySettings | undefined {
  const httpProxy = env.http_proxy || env.HTTP_PROXY || undefined;
  const httpsProxy = env.https_proxy || env.HTTPS_PROXY || undefined;
  if (!httpProxy && !httpsProxy) return undefined;
  return { httpProxy, httpsProxy, noProxy: env.no_proxy || env.NO_PROXY || undefined };
}

/** True when `url` would go through `settings`' proxy (a proxy for its scheme, and not in `NO_PROXY`). */
export function isProxied(settings: ProxySettings | undefined, url: URL): boolean {
  if (!settings) return false;
  const proxy = url.protocol === 'https:' ? settings.httpsProxy : settings.httpProxy;
  return proxy !== undefined && !new NoProxy(settings.noProxy).matches(url);
}

/**
 * `NO_PROXY` as curl reads it: names and addresses separated by commas or spaces, each matching
 * itself and its subdomains (a leading `.` or `*.` is the same), optionally with `:port`; `*`
 * alone matches every host.
 */
export class NoProxy {
  private readonly all: boolean;
  private readonly entries: Array<{ host: string; port: number | undefined }>;

  constructor(value: string | undefined) {
    const items = (value ?? '').split(/[,\s]+/).map((s) => s.trim().toLowerCase()).filter(Boolean);
    this.all = items.includes('*');
    this.entries = items.map((item) => {
      // `[v6]:port`, a bare IPv6 address (its colons are not a port), or `name[:port]`.
      const m = /^\[([^\]]*)\](?::(\d+))?$/.exec(item) ?? (isIP(item) === 6 ? [item, item] : /^(.*?)(?::(\d+))?$/.exec(item)!);
      return { host: m[1]!.replace(/^\*?\./, ''), port: m[2] ? Number(m[2]) : undefined };
    });
  }

  /** True when `url` is reached directly. */
  matches(url: URL): boolean {
    if (this.all) return true;
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    const port = Number(url.port) || (url.protocol === 'https:' ? 443 : 80);
    return this.entries.some((e) => (e.port === undefined || e.port === port) && (host === e.host || (isIP(host) === 0 && host.endsWith(`.${e.host}`))));
  }
}

/**
 * Sends a registry's requests through the proxy, or directly for `NO_PROXY` hosts (`direct` keeps
 * its own connection checks on resolved addresses). Through the proxy the name is resolved by the
 * proxy, which the operator chose: the connection rules apply to the host name as the URL gives
 * it. Plain-HTTP requests go as absolute URIs, unless the registry sends credentials: then they
 * are tunnelled too, so the proxy never reads them.
 */
export class ProxiedDispatcher extends Dispatcher {
  private readonly noProxy: NoProxy;
  private readonly agents: { http?: ProxyAgent; https?: ProxyAgent } = {};

  constructor(
    settings: ProxySettings,
    private readonly direct: Dispatcher,
    opts: { tls: Record<string, unknown>; rule?: AddressRule | undefined; tunnelHttp: boolean },
  ) {
    super();
    this.noProxy = new NoProxy(settings.noProxy);
    this.rule = opts.rule;
    const agent = (uri: string, tunnel: boolean) =>
      new ProxyAgent({
        uri,
        proxyTunnel: tunnel,
        requestTls: opts.tls,
        keepAliveTimeout: 10_000,
        ...(settings.authorization ? { token: settings.authorization } : {}),
      } as ProxyAgent.Options);
    if (settings.httpProxy) this.agents.http = agent(settings.httpProxy, opts.tunnelHttp);
    if (settings.httpsProxy) this.agents.https = agent(settings.httpsProxy, true);
  }

  private readonly rule: AddressRule | undefined;

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const url = new URL(String(opts.origin));
    const proxy = url.protocol === 'https:' ? this.agents.https : this.agents.http;
    if (!proxy || this.noProxy.matches(url)) return this.direct.dispatch(opts, handler);
    const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const why = this.rule?.refusal(hostname, hostname);
    if (why) throw new AddressRefusedError(why);
    return proxy.dispatch(opts, handler);
  }

  override async close(): Promise<void> {
    await Promise.all([this.direct.close(), this.agents.http?.close(), this.agents.https?.close()]);
  }

  override async destroy(): Promise<void> {
    await Promise.all([this.direct.destroy(), this.agents.http?.destroy(), this.agents.https?.destroy()]);
  }
}
