/**
 * The hub's TLS material: a local certificate authority and a server certificate for localhost, 127.0.0.1 and ::1,
 * signed by it. Made once per state directory and kept, so that a trusted CA stays trusted across restarts.
 * Clients trust it through NODE_EXTRA_CA_CERTS=<dir>/ca.pem.
 *
 * ECDSA P-256 keys: a TLS handshake then costs the hub a fraction of what RSA-2048 costs, which is what lets
 * a thousand clients connect at once.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { X509Certificate } from "node:crypto";

export interface TlsFiles {
  caPath: string;
  key: string;
  cert: string;
}

const DAY_MS = 86_400_000;
const EC = { keyType: "ec", curve: "P-256", algorithm: "sha256" } as const;

async function createCertificates(dir: string): Promise<void> {
  // Loaded only here: selfsigned and its x509 library take about 0.1 s to load, and a hub whose directory already has
  // its certificates (every start but the first, every test hub) never needs them.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  const { generate } = require("selfsigned") as typeof import("selfsigned");
  const now = Date.now();
  const ca = await generate([{ name: "commonName", value: "IoT Hub module twin tutorial - local hub CA" }], {
    ...EC,
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 3650 * DAY_MS),
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const server = await generate([{ name: "commonName", value: "localhost" }], {
    ...EC,
    notBeforeDate: new Date(now - 60_000),
    notAfterDate: new Date(now + 730 * DAY_MS),
    ca: { key: ca.private, cert: ca.cert },
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, critical: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
        ],
      },
    ],
  });

  // Private keys first, readable by the owner only; ca.pem last, as the marker that the set is complete.
  fs.writeFileSync(path.join(dir, "ca-key.pem"), ca.private, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, "server-key.pem"), server.private, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, "server.pem"), server.cert);
  const tmp = path.join(dir, "ca.pem.tmp");
  fs.writeFileSync(tmp, ca.cert);
  fs.renameSync(tmp, path.join(dir, "ca.pem"));
}

/** Loads the TLS files from `dir`, creating them on first use (and again when the server certificate nears its end). */
export async function ensureCertificates(dir: string): Promise<TlsFiles> {
  fs.mkdirSync(dir, { recursive: true });
  const caPath = path.resolve(dir, "ca.pem");
  const serverCertPath = path.join(dir, "server.pem");
  const usable =
    fs.existsSync(caPath) &&
    fs.existsSync(serverCertPath) &&
    new Date(new X509Certificate(fs.readFileSync(serverCertPath)).validTo).getTime() > Date.now() + DAY_MS;
  if (!usable) await createCertificates(dir);
  return {
    caPath,
    key: fs.readFileSync(path.join(dir, "server-key.pem"), "utf8"),
    cert: fs.readFileSync(serverCertPath, "utf8"),
  };
}

/** The folder of CA certificates (PEM) that X.509 `certificateAuthority` devices' certificates must chain to. */
export const CLIENT_CA_FOLDER = "client-cas";

/** The client CA certificates put in DIR/client-cas/ (*.pem, *.crt, *.cer), or undefined when there are none. */
export function loadClientCas(dir: string): string[] | undefined {
  const folder = path.join(dir, CLIENT_CA_FOLDER);
  if (!fs.existsSync(folder)) return undefined;
  const pems = fs
    .readdirSync(folder)
    .filter((name) => /\.(pem|crt|cer)$/i.test(name))
    .map((name) => fs.readFileSync(path.join(folder, name), "utf8"));
  return pems.length ? pems : undefined;
}

/**
 * The same client CAs by file name without its extension (`DIR/client-cas/myca.pem` is `myca`): a provisioning
 * enrollment group names its CA this way in `caReferences`, where Azure names a CA uploaded to the service.
 */
export function loadNamedClientCas(dir: string): Map<string, X509Certificate> {
  const folder = path.join(dir, CLIENT_CA_FOLDER);
  const named = new Map<string, X509Certificate>();
  if (!fs.existsSync(folder)) return named;
  for (const name of fs.readdirSync(folder)) {
    if (!/\.(pem|crt|cer)$/i.test(name)) continue;
    try {
      named.set(name.replace(/\.[^.]+$/, ""), new X509Certificate(fs.readFileSync(path.join(folder, name))));
    } catch {
      // Not a certificate: loadClientCas already hands it to TLS, which says so at start.
    }
  }
  return named;
}
