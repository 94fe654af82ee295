/** A parsed `WWW-Authenticate` challenge. */
export interface Challenge {
  /** Lowercased scheme: `basic`, `bearer`, ... */
  scheme: string;
  /** Lowercased parameter names: `realm`, `service`, `scope`, `error`. */
  params: Record<string, string>;
}

/**
 * Parses the first challenge of a `WWW-Authenticate` header
 * (`Bearer realm="https://auth/token",service="reg",scope="repository:a:pull,push"`).
 * Quoted values may contain commas and escaped quotes (RFC 7235 section 2.1).
 */
export function parseChallenge(header: string | string[] | undefined): Challenge | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const m = /^\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase();
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy;
  const rest = m[2]!;
  re.lastIndex = 0;
  let pm: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (pm = re.exec(rest)) !== null) {
    const raw = pm[2] !== undefined ? pm[2].replace(/\\(.)/g, '$1') : (pm[3] ?? '');
    params[pm[1]!.toLowerCase()] = raw;
  }
  return { scheme, params };
}
