import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Minimatch } from 'minimatch';
import { ReplicatorError } from '../errors.js';

/**
 * Which addresses a registry client may connect to. The rules apply to resolved addresses (a
 * `lookup` wrapped around the socket's DNS resolution, and IP literals before connecting), so
 * a name that resolves to a forbidden address is refused as surely as the address itself.
 */

/** A connection refused by policy; shows as code `URL_REFUSED`. */
export class AddressRefusedError extends ReplicatorError {
  override name = 'AddressRefusedError';
  constructor(message: string) {
    super('URL_REFUSED', message);
  }
}

/** Decides one connection: a reason when `hostname` (as the URL names it) at `address` is refused. */
export interface AddressRule {
  refusal(hostname: string, address: string): string | undefined;
}

/**
 * The rules of one client: `direct` for every request the client makes (the registry, its token
 * realm, `Link` and `Location` URLs), `redirects` for redirects it follows (blob downloads from
 * object storage, sent without credentials).
 */
export interface ConnectPolicy {
  direct: AddressRule;
  redirects: AddressRule;
}

const family = (address: string): 'ipv4' | 'ipv6' => (isIP(address) === 6 ? 'ipv6' : 'ipv4');

/** 169.254.0.0/16 and fe80::/10 (the cloud metadata endpoints live there), plus EC2's IPv6 metadata address. */
const LINK_LOCAL = new BlockList();
LINK_LOCAL.addSubnet('169.254.0.0', 16, 'ipv4');
LINK_LOCAL.addSubnet('fe80::', 10, 'ipv6');
LINK_LOCAL.addAddress('fd00:ec2::254', 'ipv6');

/** 127.0.0.0/8, ::1, and the "this host" addresses that reach it (0.0.0.0/8, ::). */
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addSubnet('0.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addAddress('::', 'ipv6');

export function isLinkLocal(address: string): boolean {
  return isIP(address) !== 0 && LINK_LOCAL.check(address, family(address));
}

export function isLoopback(address: string): boolean {
  return isIP(address) !== 0 && LOOPBACK.check(address, family(address));
}

/** `api.allowed_registry_hosts`: host globs (minimatch, case-insensitive) and CIDRs or addresses. */
export class HostPatterns {
  private readonly globs: Minimatch[] = [];
  private readonly nets = new BlockList();
  private hasNets = false;

  constructor(readonly patterns: readonly string[]) {
    for (const p of patterns) {
      const problem = hostPatternProblem(p);
      if (problem) throw new ReplicatorError('CONFIG_INVALID', `allowed registry host ${JSON.stringify(p)}: ${problem}`);
      const cidr = parseCidr(p);
      if (cidr) {
        this.nets.addSubnet(cidr.address, cidr.prefix, cidr.family);
        this.hasNets = true;
      } else {
        this.globs.push(new Minimatch(p.toLowerCase(), { nocase: true, nonegate: true, nocomment: true, noext: true, dot: true }));
      }
    }
  }

  /** True when the host name matches a glob or its address is in a listed network. */
  allows(hostname: string, address: string): boolean {
    const name = hostname.toLowerCase();
    if (this.globs.some((g) => g.match(name))) return true;
    return this.hasNets && isIP(address) !== 0 && this.nets.check(address, family(address));
  }
}

/** `10.0.0.0/8`, `fd00::/8`, or one address (a /32 or /128). */
function parseCidr(p: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address, prefixText, ...rest] = p.split('/');
  if (rest.length > 0 || !address || isIP(address) === 0) return undefined;
  const fam = family(address);
  const max = fam === 'ipv4' ? 32 : 128;
  if (prefixText === undefined) return { address, prefix: max, family: fam };
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) return undefined;
  return { address, prefix: Number(prefixText), family: fam };
}

/** Why a pattern of `allowed_registry_hosts` is not one (undefined when it is). */
export function hostPatternProblem(p: string): string | undefined {
  if (p.includes('/') || isIP(p) !== 0) return parseCidr(p) ? undefined : 'is not a valid CIDR (e.g. 10.0.0.0/8, fd00::/8)';
  if (!/^[A-Za-z0-9*?.\-[\]{},]+$/.test(p)) return 'must be a host name glob (e.g. *.corp.example) or a CIDR (e.g. 10.0.0.0/8)';
  return undefined;
}

/**
 * A rule: link-local addresses are always refused; loopback when `refuseLoopback` (on AWS,
 * where the Lambda runtime API listens there); with `allowedHosts`, anything neither matching a
 * glob nor in a listed network. `exemptHost` (a config-file registry's own host: the operator
 * chose it) passes untested.
 */
export function addressRule(opts: { refuseLoopback?: boolean; allowedHosts?: HostPatterns | undefined; exemptHost?: string | undefined } = {}): AddressRule {
  const exempt = opts.exemptHost?.toLowerCase();
  return {
    refusal(hostname, address) {
      if (exempt !== undefined && hostname.toLowerCase() === exempt) return undefined;
      const shown = hostname === address ? address : `${hostname} (${address})`;
      if (isLinkLocal(address)) return `${shown} is a link-local address (cloud metadata endpoints live there)`;
      if (opts.refuseLoopback && isLoopback(address)) return `${shown} is a loopback address, refused on AWS`;
      if (opts.allowedHosts && !opts.allowedHosts.allows(hostname, address)) return `${shown} is not in api.allowed_registry_hosts`;
      return undefined;
    },
  };
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
/** The shape of `net.connect`'s `lookup` option. */
export type LookupFunction = (hostname: string, options: { all?: boolean; family?: number | string; hints?: number }, callback: LookupCallback) => void;
type Resolver = (hostname: string, options: { all: true; family?: number | string; hints?: number }, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/**
 * `dns.lookup` for sockets, refusing a name when any of its addresses is refused (a name that
 * mixes allowed and forbidden addresses is refused as a whole).
 */
export function guardedLookup(rule: AddressRule, resolve: Resolver = dnsLookup as unknown as Resolver): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, options.all ? [] : '');
      for (const a of addresses) {
        const why = rule.refusal(hostname, a.address);
        if (why) return callback(new AddressRefusedError(why) as unknown as NodeJS.ErrnoException, options.all ? [] : '');
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), '');
      callback(null, first.address, first.family);
    });
  };
}

/**
 * Checks a URL before it is stored (the API's clear 400): its host when it is an address, else
 * every address its name resolves to now. A name that does not resolve passes (the connection
 * is checked again when it is made). Undefined when allowed.
 */
export async function urlRefusal(url: URL, rule: AddressRule, resolve: Resolver = dnsLookup as unknown as Resolver): Promise<string | undefined> {
  const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(hostname) !== 0) return rule.refusal(hostname, hostname);
  const addresses = await new Promise<LookupAddress[]>((ok) => resolve(hostname, { all: true }, (err, a) => ok(err ? [] : a)));
  for (const a of addresses) {
    const why = rule.refusal(hostname, a.address);
    if (why) return why;
  }
  return undefined;
}
