/**
 * The hub's TLS material: a local certificate authority and a server certificate for localhost, 127.0.0.1 and ::1,
 * signed by it. Made once per state directory and kept, so that a trusted CA stays trusted across restarts.
 * Clients trust it through NODE_EXTRA_CA_CERTS=<dir>/ca.pem.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import forge from "node-forge";

export interface TlsFiles {
  caPath: string;
  key: string;
  cert: string;
}

function rsaKeyPair(): { privateKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  // Node's native generator is much faster than forge's JavaScript one.
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  return { privateKey: forgeKey, publicKey: forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e), pem };
}

function newCertificate(publicKey: forge.pki.PublicKey, years: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = "01" + randomBytes(15).toString("hex"); // positive, unique
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + years * 365 * 24 * 3600_000);
  return cert;
}

function createCertificates(dir: string): void {
  const ca = rsaKeyPair();
  const caCert = newCertificate(ca.publicKey, 10);
  const caName = [{ name: "commonName", value: "IoT Hub module twin tutorial - local hub CA" }];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(ca.privateKey, forge.md.sha256.create());

  const server = rsaKeyPair();
  const serverCert = newCertificate(server.publicKey, 2);
  serverCert.setSubject([{ name: "commonName", value: "localhost" }]);
  serverCert.setIssuer(caName);
  serverCert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [
        { type: 2, value: "localhost" },
        { type: 7, ip: "127.0.0.1" },
        { type: 7, ip: "::1" },
      ],
    },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  serverCert.sign(ca.privateKey, forge.md.sha256.create());

  // Private keys first, readable by the owner only; ca.pem last, as the marker that the set is complete.
  fs.writeFileSync(path.join(dir, "ca-key.pem"), ca.pem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, "server-key.pem"), server.pem, { mode: 0o600 });
  fs.writeFileSync(path.join(dir, "server.pem"), forge.pki.certificateToPem(serverCert));
  const tmp = path.join(dir, "ca.pem.tmp");
  fs.writeFileSync(tmp, forge.pki.certificateToPem(caCert));
  fs.renameSync(tmp, path.join(dir, "ca.pem"));
}

/** Loads the TLS files from `dir`, creating them on first use. */
export function ensureCertificates(dir: string): TlsFiles {
  fs.mkdirSync(dir, { recursive: true });
  const caPath = path.resolve(dir, "ca.pem");
  const serverCertPath = path.join(dir, "server.pem");
  const expired =
    fs.existsSync(serverCertPath) &&
    forge.pki.certificateFromPem(fs.readFileSync(serverCertPath, "utf8")).validity.notAfter.getTime() < Date.now() + 86_400_000;
  if (!fs.existsSync(caPath) || !fs.existsSync(serverCertPath) || expired) createCertificates(dir);
  return {
    caPath,
    key: fs.readFileSync(path.join(dir, "server-key.pem"), "utf8"),
    cert: fs.readFileSync(serverCertPath, "utf8"),
  };
}
