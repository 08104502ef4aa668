/**
 * The provisioning service's HTTPS edge: hub.ts hands it the requests whose path is the DPS's (rest-routes.ts), on
 * the hub's own port 443. Parse, route, authorize (service token) or collect the device's credentials, read the body,
 * call the core, answer in the DPS's JSON and error shape. One log line per request, never a token.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { ENABLE_OAUTH_HINT, OAuthMode, isBearer } from "../../core/bearer";
import type { HubCore } from "../../core/hub-core";
import { DpsError, asDpsError, dpsBadRequest } from "../../core/provisioning/dps-errors";
import { parseJson, readBody } from "../rest/body";
import { msSince } from "../timing";
import { peerCertificateOf } from "./peer-certificate";
import { dpsRoute, isProvisioningPath } from "./rest-routes";

const JSON_TYPE = "application/json; charset=utf-8";

function segmentsOf(url: string | undefined): string[] | undefined {
  try {
    const pathname = new URL(url ?? "/", "https://localhost").pathname;
    return pathname.split("/").filter(Boolean).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** True for the requests hub.ts hands to this edge rather than to IoT Hub's REST edge. */
export function isProvisioningRequest(req: IncomingMessage): boolean {
  const segments = segmentsOf(req.url);
  return segments !== undefined && segments.length > 0 && isProvisioningPath(segments);
}

export function createProvisioningHandler(
  core: HubCore,
  log: (line: string) => void,
  options: { oauth?: OAuthMode } = {},
) {
  const dps = core.provisioning;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    const requestId = randomUUID();
    const method = req.method ?? "GET";
    let pathname = (req.url ?? "/").split("?")[0].slice(0, 200);
    let status = 500;
    try {
      const url = new URL(req.url ?? "/", "https://localhost");
      pathname = url.pathname.slice(0, 200);
      const segments = segmentsOf(req.url);
      if (!segments) throw dpsBadRequest("The path is not valid URL encoding");
      const found = dpsRoute(dps, method, segments, url.searchParams.get("api-version") ?? "");
      if (found === undefined) throw new DpsError(404, 404000, `No such resource: ${method} ${pathname}`);
      if (found === null) throw new DpsError(405, 405000, `${method} is not supported on ${pathname}`);
      if (found.needs && !options.oauth && isBearer(req.headers.authorization)) {
        log(`a bearer token (Microsoft Entra ID) was refused by the provisioning service: ${ENABLE_OAUTH_HINT}`);
      }
      if (found.needs) dps.authorizeService(req.headers.authorization, found.needs, options.oauth);
      if (!found.hasBody) req.resume();
      const body = found.hasBody ? parseJson(await readBody(req)) : {};
      const ifMatch = req.headers["if-match"];
      const answer = await found.run({
        body,
        ifMatch: typeof ifMatch === "string" ? ifMatch : undefined,
        headers: req.headers,
        credentials: {
          sasToken: found.needs ? undefined : req.headers.authorization,
          certificate: found.needs ? undefined : peerCertificateOf(req.socket as TLSSocket),
        },
      });
      status = answer.status;
      const headers = { "x-ms-request-id": requestId, ...answer.headers };
      if (answer.json === undefined) {
        res.writeHead(status, headers).end();
        return;
      }
      const text = JSON.stringify(answer.json);
      res.writeHead(status, { "Content-Type": JSON_TYPE, ...headers }).end(text);
    } catch (err) {
      const error =
        asDpsError(err) ?? new DpsError(500, 500000, "The local provisioning service failed to handle the request");
      if (!asDpsError(err)) log(`internal error on DPS ${method} ${pathname}: ${(err as Error)?.stack ?? String(err)}`);
      status = error.status;
      if (!res.headersSent) {
        res.writeHead(status, {
          "Content-Type": JSON_TYPE,
          "x-ms-error-code": String(error.errorCode),
          "x-ms-request-id": requestId,
        });
        res.end(error.toBody(requestId));
      }
    } finally {
      log(`DPS ${method} ${pathname} ${status} ${msSince(started).toFixed(1)}ms`);
    }
  };
}
