// Owns what a backend address may be and its normal form `http://host:port` or
// `https://host:port`, the backend's identity across reloads (the config diff and the admin API
// key backends by it).

export interface BackendAddress {
  /** `http://host:port` or `https://host:port`, host lower-case, IPv6 in brackets. */
  readonly url: string;
  /** Host to connect to: lower-case, IPv6 without brackets (what net.connect wants). */
  readonly host: string;
  readonly port: number;
}

/** The normal form of a backend URL, or what is wrong with it. Never throws. */
export function normaliseBackendUrl(raw: string): BackendAddress | string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return `not a valid URL: ${JSON.stringify(raw)} (write it like "http://127.0.0.1:3001")`;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return `scheme must be http:// or https://, got "${u.protocol}" in ${JSON.stringify(raw)} (write it like "http://127.0.0.1:3001")`;
  }
  // The raw '@' check catches an empty userinfo (`http://@host`) that URL drops silently.
  if (u.username !== '' || u.password !== '' || /^[a-z]+:\/\/[^/]*@/i.test(raw.trim())) {
    return 'must not contain a user name or password';
  }
  if (u.pathname !== '/') {
    return `must not have a path (got "${u.pathname}"): requests keep their own path; use routes to pick a pool by path`;
  }
  // `http://h/?` parses to an empty search, so look at the text as well.
  if (u.search !== '' || u.hash !== '' || raw.includes('?') || raw.includes('#')) {
    return 'must not have a query string or fragment';
  }
  if (u.hostname === '') return `has no host: ${JSON.stringify(raw)}`;
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port);
  if (port < 1 || port > 65535) return `port must be from 1 to 65535, got ${port}`;
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { url: `${u.protocol}//${u.hostname}:${port}`, host, port };
}

/** True for a normalised `https://` backend URL: the connection speaks TLS. */
export function usesTls(url: string): boolean {
  return url.charCodeAt(4) === 115; // 'https://' vs 'http://'
}
