// Owns the `redirect_https` listener: every request answered 308 Permanent Redirect to
// `https://HOST[:PORT]/path?query` (the port only when it is not 443; HOST is the request's Host
// without its port), except `/.well-known/acme-challenge/TOKEN`, which is served from
// `acme_webroot` when set (certbot's webroot mode writes TOKEN under
// WEBROOT/.well-known/acme-challenge/). Nothing is proxied. Runs inside uWS: never throws.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type uWS from 'uWebSockets.js';

const CHALLENGE = '/.well-known/acme-challenge/';

/** A Host value's name without its port, or null when it is not a plain name or address. */
function hostName(host: string): string | null {
  let end = host.length;
  if (host.charCodeAt(0) === 91 /* [ */) {
    end = host.indexOf(']') + 1;
    if (end === 0) return null;
    if (end < host.length && host.charCodeAt(end) !== 58 /* : */) return null;
  } else {
    const colon = host.indexOf(':');
    if (colon >= 0) end = colon;
  }
  if (end === 0) return null;
  for (let i = 0; i < end; i++) {
    const c = host.charCodeAt(i);
    // letters, digits, '-', '.', and in brackets ':' and hex: nothing that could end the header or the authority
    const ok = (c >= 48 && c <= 58) || (c >= 65 && c <= 93 && c !== 92) || (c >= 97 && c <= 122) || c === 45 || c === 46 || c === 95;
    if (!ok) return null;
  }
  return host.slice(0, end);
}

/** ACME tokens are base64url: anything else is not a challenge file (and cannot leave the folder). */
function isAcmeToken(name: string): boolean {
  if (name.length === 0 || name.length > 256) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45 || c === 95)) return false;
  }
  return true;
}

function answer(res: uWS.HttpResponse, status: string, body: string | Buffer, location: string | null): void {
  res.cork(() => {
    res.writeStatus(status);
    if (location !== null) res.writeHeader('location', location);
    res.writeHeader('content-type', 'text/plain; charset=utf-8');
    res.end(body);
  });
}

/** The request handler of a redirect listener to HTTPS on `httpsPort`. */
export function redirectHandler(httpsPort: number, webroot: string | null): (res: uWS.HttpResponse, req: uWS.HttpRequest) => void {
  const portPart = httpsPort === 443 ? '' : `:${httpsPort}`;
  const challengeDir = webroot === null ? null : join(webroot, '.well-known', 'acme-challenge');
  return (res, req) => {
    try {
      const path = req.getUrl();
      if (challengeDir !== null && path.startsWith(CHALLENGE)) {
        const token = path.slice(CHALLENGE.length);
        let body: Buffer | null = null;
        if (isAcmeToken(token)) {
          try {
            body = readFileSync(join(challengeDir, token)); // a few bytes, a few times per renewal
          } catch {
            body = null;
          }
        }
        if (body === null) answer(res, '404 Not Found', '404 Not Found\n', null);
        else answer(res, '200 OK', body, null);
        return;
      }
      const name = hostName(req.getHeader('host'));
      if (name === null) {
        answer(res, '400 Bad Request', '400 Bad Request: no usable Host to redirect to\n', null);
        return;
      }
      const query = req.getQuery();
      const location = 'https://' + name + portPart + path + (query === undefined ? '' : '?' + query);
      answer(res, '308 Permanent Redirect', '', location);
    } catch {
      try {
        res.close();
      } catch {
        // gone already
      }
    }
  };
}
