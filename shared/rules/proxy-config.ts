import type { ProxySettings } from '../registry/proxy.js';
import type { AwsProxyConfig } from './config-schema.js';
import { resolveSecret, type SecretSources } from './secrets.js';

/**
 * The forward proxy of the AWS functions, from `aws.proxy`: its password read from its secret
 * (once per process) and sent only to the proxy, as `Proxy-Authorization: Basic`.
 */
export async function proxyOfAwsConfig(proxy: AwsProxyConfig | undefined, secrets: SecretSources): Promise<ProxySettings | undefined> {
  const routes = proxyRoutesOfAwsConfig(proxy);
  if (!proxy || !routes) return undefined;
  const c = proxy.credential;
  const authorization = c
    ? `Basic ${Buffer.from(`${c.username}:${await resolveSecret(c.password, 'aws.proxy.credential.password', secrets)}`).toString('base64')}`
    : undefined;
  return { ...routes, authorization };
}

/** Where `aws.proxy` sends requests, without its credential (what the connection checks need). */
export function proxyRoutesOfAwsConfig(proxy: AwsProxyConfig | undefined): ProxySettings | undefined {
  if (!proxy) return undefined;
  const noProxy = Array.isArray(proxy.no_proxy) ? proxy.no_proxy.join(',') : proxy.no_proxy;
  return { httpsProxy: proxy.https_proxy, httpProxy: proxy.http_proxy, noProxy };
}
