/**
 * A request body over the hub's limit gets a 413 the client can read, with the hub's error body, whether it announces
 * its length or streams it in chunks: the hub reads and discards it (up to a bound) instead of resetting the
 * connection under the client. The SDK's registry is served afterwards.
 */
import * as https from "node:https";
import { ProtocolHub, ownerToken, startProtocolHub } from "../helpers/raw";
import { expectSdkClientsServed, redirectSdks } from "../helpers/sdk-probe";

const TEN_MB = 10 * 1024 * 1024;

let hub: ProtocolHub;
beforeAll(async () => {
  hub = await startProtocolHub();
  redirectSdks(hub.hub);
});
afterAll(() => hub.hub.stop());

/** PUT /devices/x with a 10 MB body, written in 64 KB chunks as a client streams it; resolves with what came back. */
function putLarge(chunked: boolean): Promise<{ status: number; body: string; errorCode?: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port: hub.hub.ports.https,
        method: "PUT",
        path: "/devices/x?api-version=2021-04-12",
        agent: false,
        headers: {
          Authorization: ownerToken(hub.hub),
          "Content-Type": "application/json; charset=utf-8",
          ...(chunked ? {} : { "Content-Length": String(TEN_MB) }),
        },
      },
      (res) => {
        let body = "";
        res.on("data", (chunk: Buffer) => (body += chunk.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body, errorCode: res.headers["iothub-errorcode"] as string }),
        );
      },
    );
    req.on("error", reject);
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    let written = 0;
    const writeMore = () => {
      while (written < TEN_MB) {
        written += chunk.length;
        if (!req.write(chunk)) return void req.once("drain", writeMore);
      }
      req.end();
    };
    writeMore();
  });
}

describe.each([
  ["with Content-Length", false],
  ["chunked", true],
])("a 10 MB body %s", (_what, chunked) => {
  it("gets a readable 413 RequestEntityTooLarge, every time, and the registry is still served", async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const answer = await putLarge(chunked);
      expect(answer.status).toBe(413);
      expect(answer.errorCode).toBe("RequestEntityTooLarge");
      expect(JSON.parse(answer.body).Message).toMatch(/^ErrorCode:RequestEntityTooLarge;/);
    }
    await expectSdkClientsServed(hub.hub);
  });
});
