/** Malformed HTTPS requests get the hub's error answer, never crash it; after each, a valid client is still served. */
import {
  ProtocolHub,
  createDevice,
  expectStillServed,
  ownerToken,
  rawHttps,
  rest,
  startProtocolHub,
} from "../helpers/raw";

let hub: ProtocolHub;
beforeAll(async () => (hub = await startProtocolHub()));
afterAll(() => hub.hub.stop());

const BAD_TARGETS = ["//[", "http://", "//a:b:c", "http://[::1"];

describe("a request target that is not a valid URL", () => {
  it.each(BAD_TARGETS)("%s gets 400 and the hub keeps serving", async (target) => {
    const answer = await rawHttps(hub.hub, `GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    await expectStillServed(hub);
  });

  it.each(BAD_TARGETS)("%s on a WebSocket upgrade is refused and the hub keeps serving", async (target) => {
    const upgrade =
      `GET ${target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
    const answer = await rawHttps(hub.hub, upgrade);
    expect(answer).not.toMatch(/^HTTP\/1\.1 101 /);
    await expectStillServed(hub);
  });
});

describe("api-version", () => {
  // The real hub: 400, iothub-errorcode InvalidProtocolVersion, Message "ErrorCode:InvalidProtocolVersion;BadRequest".
  const expectInvalidProtocolVersion = (response: {
    status: number;
    headers: Record<string, unknown>;
    body: string;
  }) => {
    expect(response.status).toBe(400);
    expect(response.headers["iothub-errorcode"]).toBe("InvalidProtocolVersion");
    expect(JSON.parse(response.body).Message).toMatch(/^ErrorCode:InvalidProtocolVersion;/);
  };

  it("a request without api-version gets 400 InvalidProtocolVersion", async () => {
    const response = await rest(hub.hub, "GET", `/devices/${hub.probe.deviceId}?top=1`, {
      token: ownerToken(hub.hub),
    });
    expectInvalidProtocolVersion(response);
    await expectStillServed(hub);
  });

  it("a request with a made-up api-version gets 400 InvalidProtocolVersion", async () => {
    for (const version of ["1999-01-01", "banana", ""]) {
      const response = await rest(hub.hub, "GET", `/devices/${hub.probe.deviceId}?api-version=${version}`, {
        token: ownerToken(hub.hub),
      });
      expectInvalidProtocolVersion(response);
    }
  });

  it("a write with a made-up api-version changes nothing", async () => {
    const response = await rest(hub.hub, "PUT", "/devices/neverMade?api-version=2099-13-01", {
      token: ownerToken(hub.hub),
      body: JSON.stringify({ deviceId: "neverMade" }),
    });
    expectInvalidProtocolVersion(response);
    expect((await rest(hub.hub, "GET", "/devices/neverMade", { token: ownerToken(hub.hub) })).status).toBe(404);
  });
});

describe("a JSON body with invalid UTF-8", () => {
  it("gets 400 ArgumentInvalid and stores nothing", async () => {
    await createDevice(hub.hub, "utf8");
    const body = Buffer.concat([
      Buffer.from('{"properties":{"desired":{"name":"'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}}}'),
    ]);
    const response = await rest(hub.hub, "PATCH", "/twins/utf8", {
      token: ownerToken(hub.hub),
      body,
      headers: { "If-Match": "*" },
    });
    expect(response.status).toBe(400);
    expect(response.headers["iothub-errorcode"]).toBe("ArgumentInvalid");
    const twin = JSON.parse((await rest(hub.hub, "GET", "/twins/utf8", { token: ownerToken(hub.hub) })).body);
    expect(twin.properties.desired).not.toHaveProperty("name");
    await expectStillServed(hub);
  });
});

describe("garbage on the HTTPS port", () => {
  it("bytes that are not HTTP close the connection and the hub keeps serving", async () => {
    const answer = await rawHttps(hub.hub, Buffer.from([0x10, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x0d, 0x0a, 0x0d, 0x0a]));
    expect(answer).not.toMatch(/^HTTP\/1\.1 2/);
    await expectStillServed(hub);
  });

  it("a header section over the limit gets 431 and the hub keeps serving", async () => {
    const answer = await rawHttps(
      hub.hub,
      `GET /devices HTTP/1.1\r\nHost: localhost\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`,
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    await expectStillServed(hub);
  });
});
