/** `GET /health` on the HTTPS port: no authentication, 200 with where each edge listens, the state directory, uptime. */
import type { Hub } from "../localhub";
import { rawRequest, startTestHub, tempDir } from "../helpers/hub";

let hub: Hub;
let dataDir: string;
beforeAll(async () => {
  dataDir = tempDir();
  hub = await startTestHub(dataDir);
});
afterAll(() => hub.stop());

it("answers 200 without authentication, with the edges, the state directory and the uptime", async () => {
  const res = await rawRequest("GET", "/health");
  expect(res.status).toBe(200);
  expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
  const body = JSON.parse(res.body);
  expect(body).toMatchObject({ status: "ready", hostName: "localhost", stateDirectory: dataDir, inMemory: false });
  expect(body.edges.https).toContain(`https://127.0.0.1:${hub.ports.https}`);
  expect(body.edges.mqtt).toContain(`mqtts://127.0.0.1:${hub.ports.mqtt}`);
  expect(body.edges.amqp).toContain(`amqps://127.0.0.1:${hub.ports.amqp}`);
  expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
  expect(res.body.length).toBeLessThan(1024);
});

it("ignores a query string and refuses methods other than GET and HEAD", async () => {
  expect((await rawRequest("GET", "/health?api-version=2021-04-12")).status).toBe(200);
  expect((await rawRequest("POST", "/health", { body: "{}" })).status).toBe(405);
});
