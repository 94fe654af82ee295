import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

/** Options of a docker-registry (distribution 2.8) started for a test. */
export interface RegistryOptions {
  /** htpasswd file (bcrypt) for Basic auth. */
  htpasswd?: string;
  /** Token auth: the registry trusts tokens signed by the cert bundle's key. */
  token?: { realm: string; service: string; issuer: string; rootcertbundle: string };
  /** Serve HTTPS with this certificate and key. */
  tls?: { certificate: string; key: string };
  /** Answer upload `Location`s as relative URLs. */
  relativeUrls?: boolean;
  /** Storage directory to reuse (default: a new temp dir). */
  storage?: string;
  /**
   * Accept manifests whose layers carry `urls` (Windows' foreign layers): docker-registry 2.8
   * refuses them (MANIFEST_BLOB_UNKNOWN) unless `validation.manifests.urls.allow` is set.
   */
  allowUrls?: boolean;
  /** Accept Docker schema 1 pushes (`compatibility.schema1.enabled`; refused by default in 2.8). */
  schema1?: boolean;
}

/** A running docker-registry on 127.0.0.1. */
export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  port: number;
  /** `http(s)://127.0.0.1:PORT` */
  url: string;
  storage: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/**
 * Starts Debian's `docker-registry` on 127.0.0.1 with temp storage; resolves once `/v2/`
 * answers. Tries another port if the chosen one was taken in between.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'hr-registry-'));
  const storage = opts.storage ?? join(dir, 'storage');
  await mkdir(storage, { recursive: true });
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const config = registryConfig(port, storage, opts);
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, config);
    // The log goes straight to a file: a parent blocked in spawnSync must not stall the registry.
    const log = openSync(join(dir, 'registry.log'), 'a');
    const child = spawn('docker-registry', ['serve', configPath], { stdio: ['ignore', log, log] });
    closeSync(log);
    const scheme = opts.tls ? 'https' : 'http';
    const url = `${scheme}://127.0.0.1:${port}`;
    if (await waitReady(url, child)) {
      return {
        host: `127.0.0.1:${port}`,
        port,
        url,
        storage,
        process: child,
        stop: async () => {
          await stopProcess(child);
          if (!opts.storage) await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stopProcess(child);
  }
  throw new Error(`docker-registry did not start; see ${dir}/registry.log`);
}

function registryConfig(port: number, storage: string, opts: RegistryOptions): string {
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    `  relativeurls: ${opts.relativeUrls ? 'true' : 'false'}`,
  ];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.certificate}`, `    key: ${opts.tls.key}`);
  if (opts.allowUrls) lines.push('validation:', '  manifests:', '    urls:', '      allow:', "        - '^https?://'");
  if (opts.schema1) lines.push('compatibility:', '  schema1:', '    enabled: true');
  if (opts.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: test-realm', `    path: ${opts.htpasswd}`);
  if (opts.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${opts.token.realm}`,
      `    service: ${opts.token.service}`,
      `    issuer: ${opts.token.issuer}`,
      `    rootcertbundle: ${opts.token.rootcertbundle}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function waitReady(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    try {
      const res = await request(`${url}/v2/`, {
        dispatcher: undefined,
        headersTimeout: 1000,
        bodyTimeout: 1000,
      }).catch(async (err: unknown) => {
        // A TLS registry with a self-signed certificate still proves it is up.
        if (String((err as Error).message).includes('certificate')) return { statusCode: 200, body: { dump: async () => {} } };
        throw err;
      });
      await res.body.dump();
      if (res.statusCode === 200 || res.statusCode === 401) return true;
    } catch {
      // not up yet
    }
    await sleep(50);
  }
  return false;
}

/** SIGTERM, then SIGKILL after a grace period. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
