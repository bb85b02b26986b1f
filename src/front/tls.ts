// Owns the TLS side of a listener in uWebSockets.js: the SSLApp of one listener, its default
// certificate (the first: clients without SNI, or with an unknown name) and one server name per
// DNS name of every other certificate (uWS matches a `*.example.com` name to one label), each
// name with the request handler on its own router (uWS keeps one router per server name).
// uWS has no option for a minimum TLS version; its BoringSSL refuses below 1.2 already, and
// `min_version: "1.3"` limits TLS 1.2 to one cipher suite the certificate's key cannot sign for,
// so a TLS 1.2 handshake fails (measured: handshake_failure alert) while TLS 1.3 is unaffected.

import uWS from 'uWebSockets.js';
import type { CertificateConfig, ListenerTlsConfig } from '../config/types.js';

type Handler = (res: uWS.HttpResponse, req: uWS.HttpRequest) => void;

/** A TLS 1.2 suite no certificate with a key of this type can use (ECDSA/EdDSA vs RSA). */
function unusableSuite(keyType: string): string {
  return keyType === 'rsa' || keyType === 'rsa-pss' ? 'ECDHE-ECDSA-AES128-GCM-SHA256' : 'ECDHE-RSA-AES128-GCM-SHA256';
}

function appOptions(c: CertificateConfig, tls: ListenerTlsConfig): uWS.AppOptions {
  const o: uWS.AppOptions = { key_file_name: c.keyFile, cert_file_name: c.certFile };
  if (c.passphrase !== null) o.passphrase = c.passphrase;
  if (tls.minVersion === '1.3') o.ssl_ciphers = unusableSuite(c.keyType);
  else if (tls.ciphers !== null) o.ssl_ciphers = tls.ciphers;
  return o;
}

/** The SSLApp of a TLS listener with `handler` on every route of every server name. Throws when uWS cannot load a certificate. */
export function sslApp(tls: ListenerTlsConfig, handler: Handler, ws: uWS.WebSocketBehavior<never> | null = null): uWS.TemplatedApp {
  const first = tls.certificates[0]!;
  const app = uWS.SSLApp(appOptions(first, tls));
  if (ws !== null) app.ws('/*', ws);
  app.any('/*', handler);
  for (let i = 1; i < tls.certificates.length; i++) {
    const c = tls.certificates[i]!;
    const options = appOptions(c, tls);
    for (const name of c.names) {
      app.addServerName(name, options);
      const router = app.domain(name);
      if (ws !== null) router.ws('/*', ws);
      router.any('/*', handler);
    }
  }
  return app;
}
