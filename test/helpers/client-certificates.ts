/** Client certificates for X.509 tests: self-signed device certificates, a test CA, and devices signed by it. */
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { generate } from "selfsigned";

const EC = { keyType: "ec", curve: "P-256", algorithm: "sha256" } as const;
const DAY = 86_400_000;

export interface ClientCertificate {
  cert: string;
  key: string;
  sha1: string;
  sha256: string;
}

/**
 * A CA (self-signed, may sign) when `issuer` is absent; else a client certificate `issuer` signed, or with
 * `intermediate` an intermediate CA it signed (which may sign in turn).
 */
export async function certificate(
  commonName: string,
  issuer?: { key: string; cert: string },
  intermediate = false,
): Promise<ClientCertificate> {
  const made = await generate([{ name: "commonName", value: commonName }], {
    ...EC,
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + DAY),
    ...(issuer ? { ca: issuer } : {}),
    extensions:
      issuer && !intermediate
        ? [
            { name: "basicConstraints", cA: false },
            { name: "extKeyUsage", clientAuth: true },
          ]
        : [
            { name: "basicConstraints", cA: true, critical: true },
            { name: "keyUsage", keyCertSign: true, digitalSignature: true, critical: true },
          ],
  });
  const x509 = new X509Certificate(made.cert);
  return {
    cert: made.cert,
    key: made.private,
    sha1: x509.fingerprint.replace(/:/g, ""),
    sha256: x509.fingerprint256.replace(/:/g, ""),
  };
}

/** Makes a test CA and puts it where the hub looks for client CAs (DIR/client-cas/), before the hub starts. */
export async function trustedClientCa(
  dataDir: string,
  commonName = "test CA",
  fileName = "test-ca.pem",
): Promise<ClientCertificate> {
  const ca = await certificate(commonName);
  fs.mkdirSync(path.join(dataDir, "client-cas"), { recursive: true });
  fs.writeFileSync(path.join(dataDir, "client-cas", fileName), ca.cert);
  return ca;
}
