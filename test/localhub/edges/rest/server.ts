/**
 * The service REST edge (HTTPS): parse the target, route, authenticate and authorize, read the body, call the core
 * (which answers once the change is durable), answer in the hub's JSON and error format. One log line per request.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { HubError, badRequest, invalidProtocolVersion } from "../../core/errors";
import type { HubCore } from "../../core/hub-core";
import { ENABLE_OAUTH_HINT, OAuthMode, authenticateBearer, isBearer } from "../../core/bearer";
import { Principal, authenticate, authorize } from "../../core/sas";
import { parseJson, readBody } from "./body";
import { x509Principal } from "./device-auth";
import { RawAnswer } from "./raw-answer";
import { JsonWithHeaders, route } from "./routes";
import { msSince } from "../timing";
import { MAX_HTTP_HEADERS } from "../../listeners";

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * The data-plane api-versions the real hub publishes (azure-iothub 1.16 sends 2021-04-12). Without one, or with any
 * other, the real hub answers 400 InvalidProtocolVersion before it looks at anything else.
 */
export const API_VERSIONS = new Set([
  "2016-11-14",
  "2017-06-30",
  "2018-04-01",
  "2018-06-30",
  "2019-03-30",
  "2019-10-01",
  "2020-03-13",
  "2020-05-31-preview",
  "2020-09-30",
  "2021-04-12",
]);

/** Splits a request target into decoded path segments and its query; odd targets are a 400, never a crash. */
function parseTarget(target: string | undefined): { pathname: string; segments: string[]; query: URLSearchParams } {
  let url: URL;
  try {
    url = new URL(target ?? "/", "https://localhost");
  } catch {
    throw badRequest("The request target is not a valid URL");
  }
  try {
    return {
      pathname: url.pathname,
      segments: url.pathname.split("/").filter(Boolean).map(decodeURIComponent),
      query: url.searchParams,
    };
  } catch {
    throw badRequest("The path is not valid URL encoding");
  }
}

export function createRestHandler(core: HubCore, log: (line: string) => void, options: { oauth?: OAuthMode } = {}) {
  /** A SAS token, or with `--oauth basic` an Entra ID bearer token; a refused bearer says how to enable them. */
  const principalOf = (header: string | undefined): Principal => {
    if (!isBearer(header)) return authenticate(core, header);
    if (!options.oauth) log(`a bearer token (Microsoft Entra ID) was refused: ${ENABLE_OAUTH_HINT}`);
    return authenticateBearer(header!, options.oauth);
  };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    // Azure answers every request with x-ms-request-id; error bodies name it again, without dashes.
    const requestId = randomUUID();
    const trackingId = requestId.replace(/-/g, "");
    const method = req.method ?? "GET";
    let pathname = (req.url ?? "/").split("?")[0].slice(0, 200);
    let status = 500;
    try {
      if (req.rawHeaders.length / 2 > MAX_HTTP_HEADERS) {
        throw new HubError(
          431,
          "RequestHeaderFieldsTooLarge",
          `A request may carry at most ${MAX_HTTP_HEADERS} headers`,
        );
      }
      const target = parseTarget(req.url);
      pathname = target.pathname;
      if (!API_VERSIONS.has(target.query.get("api-version") ?? "")) throw invalidProtocolVersion();
      const found = route(core, method, target.segments);
      if (found === undefined) throw new HubError(404, "NotFound", `No such resource: ${method} ${pathname}`);
      if (found === null) throw new HubError(405, "MethodNotAllowed", `${method} is not supported on ${pathname}`);
      // A device route without a token: the device's TLS client certificate, as IoT Hub takes X.509 over HTTPS.
      const byCertificate = found.identity !== undefined && req.headers.authorization === undefined;
      const principal = byCertificate
        ? x509Principal(core, req, found.identity!)
        : principalOf(req.headers.authorization);
      authorize(principal, found.needs, found.resource);
      if (!found.hasBody) req.resume(); // nothing to look at; drain whatever was sent
      const bytes = found.hasBody ? await readBody(req, found.maxBodyBytes?.(req.headers)) : Buffer.alloc(0);
      const body = found.hasBody === true ? parseJson(bytes) : {};
      const ifMatch = req.headers["if-match"];
      const answer = await found.run({
        body,
        bytes,
        ifMatch: typeof ifMatch === "string" ? ifMatch : undefined,
        query: target.query,
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        authType: byCertificate ? "x509" : "sas",
      });
      if (answer === undefined) {
        status = 204;
        res.writeHead(204, { "x-ms-request-id": requestId }).end();
        return;
      }
      if (answer instanceof RawAnswer) {
        status = 200;
        res.writeHead(200, { "x-ms-request-id": requestId, ...answer.headers }).end(answer.body);
        return;
      }
      const { json, headers } = answer instanceof JsonWithHeaders ? answer : { json: answer, headers: {} };
      // Serialised before the status line: if it throws, the client still gets an error answer, not silence.
      const text = JSON.stringify(json);
      status = 200;
      res.writeHead(200, { "Content-Type": JSON_TYPE, "x-ms-request-id": requestId, ...headers });
      res.end(text);
    } catch (err) {
      const hubError =
        err instanceof HubError ? err : new HubError(500, "ServerError", "The local hub failed to handle the request");
      if (!(err instanceof HubError))
        log(`internal error on ${method} ${pathname}: ${(err as Error)?.stack ?? String(err)}`);
      status = hubError.status;
      if (!res.headersSent) {
        res.writeHead(status, {
          "Content-Type": JSON_TYPE,
          "iothub-errorcode": hubError.code,
          "x-ms-request-id": requestId,
        });
        res.end(hubError.toRestBody(trackingId));
      }
    } finally {
      const ms = msSince(started);
      log(`${method} ${pathname} ${status} ${ms.toFixed(1)}ms`);
    }
  };
}
