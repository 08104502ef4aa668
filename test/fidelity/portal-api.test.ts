/**
 * The portal's HTTP side, as the page uses it: the token and its cookie, what it refuses (other host names, other
 * origins, oversized bodies, a stale etag, too many live views), and the live stream of telemetry, C2D outcomes,
 * method answers and faults, with the unmodified device SDK on the other end.
 */
import * as http from "node:http";
import { Registry } from "azure-iothub";
import { Message, ModuleClient } from "azure-iot-device";
import { Client as DeviceClient } from "azure-iot-device";
import { Mqtt } from "azure-iot-device-mqtt";
import type { Hub } from "../localhub";
import { eventually, moduleConnectionString, startTestHub, tempDir } from "../helpers/hub";

let hub: Hub;
let cookie: string;
const clients: { close(): Promise<unknown> }[] = [];

beforeAll(async () => {
  hub = await startTestHub(tempDir(), { portal: { port: 0 } });
  const registry = Registry.fromConnectionString(hub.connectionString);
  await registry.create({ deviceId: "sensor" });
  await registry.addModule({ deviceId: "sensor", moduleId: "reader" });
  const first = await request("GET", new URL(hub.portal!.url).pathname + new URL(hub.portal!.url).search);
  cookie = String(first.headers["set-cookie"]).split(";")[0];
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close().catch(() => {})));
});
afterAll(() => hub.stop());

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(method: string, path: string, options: { body?: unknown; headers?: Record<string, string> } = {}) {
  return new Promise<Answer>((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = http.request(
      {
        host: "127.0.0.1",
        port: hub.portal!.port,
        method,
        path,
        headers: {
          ...(cookie ? { Cookie: cookie } : {}),
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...options.headers,
        },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** Opens the live stream and collects its events (name and parsed data). */
function live(query = "") {
  const events: { event: string; data: any }[] = [];
  let buffer = "";
  const req = http.get(
    { host: "127.0.0.1", port: hub.portal!.port, path: `/api/events${query}`, headers: { Cookie: cookie } },
    (res) => {
      res.on("data", (chunk: Buffer) => {
        buffer += chunk.toString();
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
        }
      });
    },
  );
  req.on("error", () => {});
  return { events, close: () => req.destroy() };
}

it("trades the token in the URL for a cookie, and refuses requests without either", async () => {
  expect(cookie).toMatch(new RegExp(`^localhub_portal_${hub.portal!.port}=`));
  const saved = cookie;
  cookie = "";
  try {
    expect((await request("GET", "/")).status).toBe(401);
    expect((await request("GET", "/api/identities")).status).toBe(401);
    expect((await request("GET", "/?token=wrong")).status).toBe(401);
    // Health needs no token, on the portal's port too.
    expect(JSON.parse((await request("GET", "/health")).body).edges.portal[0]).toMatch(/^http:\/\/127\.0\.0\.1:/);
  } finally {
    cookie = saved;
  }
  const page = await request("GET", "/");
  expect(page.status).toBe(200);
  expect(page.headers["content-security-policy"]).toContain("default-src 'self'");
});

it("refuses other host names, other origins, bodies past its limit and a stale etag", async () => {
  expect((await request("GET", "/api/identities", { headers: { Host: "attacker.example:80" } })).status).toBe(403);
  const crossOrigin = await request("POST", "/api/devices", {
    body: { deviceId: "fromElsewhere" },
    headers: { Origin: "http://attacker.example" },
  });
  expect(crossOrigin.status).toBe(403);
  expect(hub.core.identities.find("fromElsewhere")).toBeUndefined();
  expect(
    (await request("POST", "/api/cloud-to-device", { body: { deviceId: "sensor", body: "x".repeat(200_000) } })).status,
  ).toBe(413);

  const twin = JSON.parse((await request("GET", "/api/twin?device=sensor&module=reader")).body);
  const first = await request("PUT", "/api/twin?device=sensor&module=reader", {
    body: { etag: twin.etag, tags: { floor: 1 }, desired: { rate: 5 } },
  });
  expect(first.status).toBe(200);
  const stale = await request("PUT", "/api/twin?device=sensor&module=reader", {
    body: { etag: twin.etag, tags: {}, desired: { rate: 6 } },
  });
  expect(stale.status).toBe(412);
  expect(JSON.parse(stale.body).code).toBe("PreconditionFailed");
  expect(hub.core.identities.find("sensor", "reader")?.twin.desired.values).toEqual({ rate: 5 });
});

it("streams the device's telemetry newest first with its properties, and a C2D message's outcome", async () => {
  const device = DeviceClient.fromConnectionString(moduleConnectionString(hub, "sensor"), Mqtt);
  clients.push(device);
  await device.open();
  const older = new Message(JSON.stringify({ t: 1 }));
  older.properties.add("level", "low");
  await device.sendEvent(older);
  const stream = live("?device=sensor");
  try {
    await eventually(
      () => stream.events.some((e) => e.event === "telemetry-history" && e.data.length === 1),
      "history",
    );
    const newer = new Message(JSON.stringify({ t: 2 }));
    newer.properties.add("level", "high");
    await device.sendEvent(newer);
    await eventually(() => stream.events.some((e) => e.event === "telemetry"), "the new message live");
    const history = JSON.parse((await request("GET", "/api/telemetry?device=sensor")).body).messages;
    expect(history.map((m: any) => [m.body, m.properties.level])).toEqual([
      ['{"t":2}', "high"],
      ['{"t":1}', "low"],
    ]);

    const received: string[] = [];
    device.on("message", (message) => {
      received.push(message.data.toString());
      void device.complete(message);
    });
    const sent = await request("POST", "/api/cloud-to-device", { body: { deviceId: "sensor", body: "hello device" } });
    const { messageId } = JSON.parse(sent.body);
    await eventually(
      () => stream.events.some((e) => e.event === "cloud-to-device" && e.data.messageId === messageId),
      "the outcome",
    );
    expect(stream.events.find((e) => e.event === "cloud-to-device")!.data.status).toBe("Success");
    expect(received).toEqual(["hello device"]);
  } finally {
    stream.close();
  }
});

it("calls a direct method and answers with the module's status and payload", async () => {
  const module = ModuleClient.fromConnectionString(moduleConnectionString(hub, "sensor", "reader"), Mqtt);
  clients.push(module);
  await module.open();
  module.onMethod("reboot", (req, res) => void res!.send(202, { accepted: req!.payload }));
  await eventually(
    () => hub.core.sessions.subscriptions("sensor/reader")?.includes("$iothub/methods/POST/#") === true,
    "the method subscription",
  );
  const answer = await request("POST", "/api/methods", {
    body: { deviceId: "sensor", moduleId: "reader", methodName: "reboot", payload: { in: 3 } },
  });
  expect(JSON.parse(answer.body)).toEqual({ status: 202, payload: { accepted: { in: 3 } } });
});

it("sets and clears faults, shown live; at most MAX_SSE_CLIENTS live views at once", async () => {
  const stream = live();
  try {
    await request("POST", "/api/faults", { body: { deviceId: "sensor", action: "latency", milliseconds: 250 } });
    await eventually(
      () => stream.events.some((e) => e.event === "faults" && e.data.faults[0]?.latencyMilliseconds === 250),
      "the fault live",
    );
    expect(hub.faults.latencyOf("sensor")).toBe(250);
    await request("DELETE", "/api/faults?device=sensor");
    expect(hub.faults.latencyOf("sensor")).toBe(0);

    const more = Array.from({ length: 15 }, () => live());
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect((await request("GET", "/api/events")).status).toBe(503);
    } finally {
      more.forEach((s) => s.close());
    }
  } finally {
    stream.close();
  }
});
