/** Helpers for tests that run a local hub in-process and drive it with the real SDKs (scripts: ./scripts.ts). */
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { createSasToken, Hub, HubOptions, redirectEnv, setPortMap, startHub } from "../localhub";
import { TEST_TLS_DIR } from "./paths";

const TLS_FILES = ["ca.pem", "ca-key.pem", "server.pem", "server-key.pem"];

export function tempDir(prefix = "localhub-"): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Puts the certificates this jest process trusts into a hub's state directory. */
export function copyTestCertificates(dataDir: string): void {
  if (!process.env.NODE_EXTRA_CA_CERTS)
    throw new Error("NODE_EXTRA_CA_CERTS is not set: run the tests with `npm test`");
  fs.mkdirSync(dataDir, { recursive: true });
  for (const file of TLS_FILES) fs.copyFileSync(path.join(TEST_TLS_DIR, file), path.join(dataDir, file));
}

/**
 * Starts a hub with a fresh (or the given) state directory and the certificates this jest process trusts, on
 * ephemeral ports, and sends this process's connections to localhost:443 and :8883 to it: the real SDKs connect as
 * they would to Azure, and test files run in parallel without sharing the machine's ports.
 */
export async function startTestHub(dataDir = tempDir(), options: HubOptions = {}): Promise<Hub> {
  copyTestCertificates(dataDir);
  const hub = await startHub({ dataDir, httpsPort: 0, mqttPort: 0, amqpPort: 0, ...options });
  setPortMap(hub.redirects);
  return hub;
}

export function moduleConnectionString(hub: Hub, deviceId: string, moduleId?: string): string {
  const identity = hub.core.identities.find(deviceId, moduleId);
  if (!identity) throw new Error(`no identity ${deviceId}/${moduleId}`);
  const key = identity.authentication.symmetricKey.primaryKey;
  return `HostName=${hub.hostName};DeviceId=${deviceId};${moduleId ? `ModuleId=${moduleId};` : ""}SharedAccessKey=${key}`;
}

/** A twin as GET /twins answers it, read synchronously (for `eventually` checks). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read nested twin fields; expectations check them
export function twinOf(hub: Hub, deviceId: string, moduleId?: string): any {
  return hub.core.twins.json(hub.core.identities.require(deviceId, moduleId));
}

/** Resolves when `check` returns true, polling; rejects with `what` after the timeout. */
export async function eventually(check: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** What a client process needs to reach the hub: its CA, and the redirect when the hub is not on 443/8883. */
export function clientEnv(hub: Pick<Hub, "caPath" | "redirects">): NodeJS.ProcessEnv {
  return { NODE_EXTRA_CA_CERTS: hub.caPath, ...redirectEnv(hub.redirects, undefined) };
}

/** The environment a reader has after `npm run hub` and pasting the lines it prints. */
export function scriptEnv(hub: Hub, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...clientEnv(hub), IOTHUB_CONNECTION_STRING: hub.connectionString, ...extra };
}

export interface RawResponse {
  status: number;
  headers: import("node:http").IncomingHttpHeaders;
  body: string;
}

/** A raw HTTPS request to the hub, for what the SDK cannot send (twin PUT, broken bodies, foreign tokens). */
export function rawRequest(
  method: string,
  path: string,
  options: { authorization?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "localhost",
        port: 443,
        method,
        path,
        headers: {
          ...(options.authorization ? { Authorization: options.authorization } : {}),
          ...(options.body !== undefined ? { "Content-Type": "application/json; charset=utf-8" } : {}),
          ...options.headers,
        },
      },
      (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

/** A SAS token for one of the hub's policies, valid for an hour (or already expired). */
export function policyToken(hub: Hub, policyName: string, expired = false): string {
  const policy = hub.core.policies.find(policyName)!;
  const expiry = Math.floor(Date.now() / 1000) + (expired ? -60 : 3600);
  return createSasToken(hub.hostName, policy.primaryKey, expiry, policyName);
}

/** A SAS token for a device or module, signed with its own primary key. */
export function identityToken(hub: Hub, deviceId: string, moduleId?: string): string {
  const identity = hub.core.identities.find(deviceId, moduleId)!;
  const resource = `${hub.hostName}/devices/${deviceId}${moduleId ? `/modules/${moduleId}` : ""}`;
  return createSasToken(
    resource,
    identity.authentication.symmetricKey.primaryKey!,
    Math.floor(Date.now() / 1000) + 3600,
  );
}
