/** The reference cloud's release signing: what the cloud team's release tooling does to publish a manifest (updater/manifest.ts checks it). */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { canonicalJson, keyIdOf, type ManifestSigned, type SignedManifest } from '../../updater/manifest.ts';

export interface ReleaseKey {
  privateKey: KeyObject;
  publicPem: string;
  keyid: string;
}

export function makeReleaseKey(): ReleaseKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), keyid: keyIdOf(publicKey) };
}

/** Signs the canonical JSON of `signed` with each key. */
export function signManifest(signed: ManifestSigned, keys: readonly ReleaseKey[]): SignedManifest {
  const bytes = Buffer.from(canonicalJson(signed), 'utf8');
  return { signed, signatures: keys.map((k) => ({ keyid: k.keyid, sig: sign(null, bytes, k.privateKey).toString('base64') })) };
}

/** The cloud's release server: signed manifests and executables over HTTP on loopback, with Range (a resumed download). */
export interface ReleaseServer {
  url: string;
  /** Serves `text` at `/<name>` (a manifest). */
  putText(name: string, text: string): void;
  /** Serves the file at `path` as `/<name>` (streamed, never read whole). */
  putFile(name: string, path: string): void;
  /** Paths asked for, in order, with the Range header when there was one. */
  readonly requests: string[];
  stop(): Promise<void>;
}

export async function startReleaseServer(): Promise<ReleaseServer> {
  const texts = new Map<string, string>();
  const files = new Map<string, string>();
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    requests.push(req.headers.range ? `${name} ${req.headers.range}` : name);
    const text = texts.get(name);
    if (text !== undefined) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(text);
      return;
    }
    const file = files.get(name);
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const size = statSync(file).size;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const from = m ? Number(m[1]) : 0;
    if (m && from < size) res.writeHead(206, { 'content-length': size - from, 'content-range': `bytes ${from}-${size - 1}/${size}` });
    else res.writeHead(200, { 'content-length': size });
    createReadStream(file, { start: m && from < size ? from : 0 }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    putText: (n, t) => texts.set(n, t),
    putFile: (n, p) => files.set(n, p),
    requests,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
