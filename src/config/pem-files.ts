// Owns reading PEM files named in the config (TLS listeners' certificates, pools' CA and client
// certificates) at load time: readable, PEM, parsable, the key the certificate's, the passphrase
// right; each problem reported at its field. Nothing here throws.

import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Field, Walk } from './walk.js';

/** The absolute path of a file field (relative to the working directory); undefined after reporting. */
export function fileName(walk: Walk, f: Field): string | undefined {
  const v = walk.string(f, 'a file path');
  if (v === undefined) return undefined;
  if (v.length === 0) {
    walk.report(f.at, f.path, 'must not be empty');
    return undefined;
  }
  return resolve(v);
}

/** The file's text when it is readable and holds a PEM block of `label`; undefined after reporting. */
export function readPem(walk: Walk, f: Field, file: string, label: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'latin1');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : code === 'EACCES' ? 'permission denied' : reason(err);
    walk.report(f.at, f.path, `cannot read ${file}: ${why}`);
    return undefined;
  }
  if (!text.includes('-----BEGIN ') || !text.includes(`${label}-----`)) {
    walk.report(f.at, f.path, `${file} is not PEM: no "-----BEGIN ...${label}-----" block`);
    return undefined;
  }
  return text;
}

/** The first certificate of a PEM file field (a chain or CA bundle may hold more); undefined after reporting. */
export function readCertificate(walk: Walk, f: Field): { file: string; x509: X509Certificate } | undefined {
  const file = fileName(walk, f);
  if (file === undefined) return undefined;
  const text = readPem(walk, f, file, 'CERTIFICATE');
  if (text === undefined) return undefined;
  try {
    return { file, x509: new X509Certificate(text) };
  } catch (err) {
    walk.report(f.at, f.path, `${file} is not a valid PEM certificate: ${reason(err)}`);
    return undefined;
  }
}

export interface KeyPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly x509: X509Certificate;
  readonly key: KeyObject;
}

/**
 * A certificate file and its private key file, checked: both PEM, the key decrypted with
 * `passphrase` when it is encrypted, and the certificate's. Undefined after reporting.
 */
export function loadKeyPair(walk: Walk, certField: Field, keyField: Field, passField: Field | undefined, passphrase: string | null): KeyPair | undefined {
  const cert = readCertificate(walk, certField);
  const keyFile = fileName(walk, keyField);
  if (keyFile === undefined) return undefined;
  const keyText = readPem(walk, keyField, keyFile, 'PRIVATE KEY');
  if (cert === undefined || keyText === undefined) return undefined;
  const encrypted = keyText.includes('ENCRYPTED');
  if (encrypted && passphrase === null) {
    walk.report(keyField.at, keyField.path, `${keyFile} is encrypted: set passphrase`);
    return undefined;
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(passphrase === null ? { key: keyText } : { key: keyText, passphrase });
  } catch (err) {
    if (encrypted) walk.report(passField?.at ?? keyField.at, passField?.path ?? keyField.path, `wrong passphrase for ${keyFile} (${reason(err)})`);
    else walk.report(keyField.at, keyField.path, `${keyFile} is not a valid PEM private key: ${reason(err)}`);
    return undefined;
  }
  if (!cert.x509.checkPrivateKey(key)) {
    walk.report(keyField.at, keyField.path, `${keyFile} is not the key of ${cert.file}`);
    return undefined;
  }
  return { certFile: cert.file, keyFile, x509: cert.x509, key };
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
