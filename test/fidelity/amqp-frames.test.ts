/**
 * The AMQP frames the hub writes, field by field, as Azure writes them: what uamqp (the Azure CLI, azure-iot-hub for
 * Python) and pyamqp (azure-eventhub 5.11) read by position or by type. Read raw, before any client decodes them.
 *
 * Sources: Azure/azure-uamqp-c src/sasl_mssbcbs.c (MSSBCBS: no initial response, outcome ok) and
 * src/amqp_management.c (status-code read with amqpvalue_get_int); IoT Hub's frames traced by uamqp-c in
 * Azure/azure-iot-sdk-c issue 2233 (BEGIN with handle-max, ATTACH with 14 fields and max-message-size 1048576,
 * TRANSFER with 11); pyamqp 5.11 (azure-sdk-for-python sdk/eventhub/azure-eventhub/azure/eventhub/_pyamqp/
 * session.py reads BEGIN's 5th field, link.py ATTACH's 11th to 14th and merges the 14th, properties, into its own,
 * receiver.py takes the payload after TRANSFER's 11).
 */
import { message as amqpMessage } from "rhea";
import { policyToken } from "../helpers/hub";
import { MessagingHub, startMessagingHub } from "./messaging-hub";
import { RawAmqpClient, Received, messageSections, typedEntries } from "./amqp-raw-client";

let running: MessagingHub;
let client: RawAmqpClient;

beforeAll(async () => {
  running = await startMessagingHub(undefined, { log: (line) => process.env.HUB_LOG && console.log(line) });
});
afterEach(() => client?.close());
afterAll(() => running.stop());

const INT_TYPES = ["Int", "SmallInt"];
const STRING_TYPES = ["Str8", "Str32"];

/** SASL MSSBCBS, OPEN and BEGIN, as uamqp's CBS login starts a connection. */
async function openSession(): Promise<{ mechanisms: string[]; begin: Received }> {
  client = await RawAmqpClient.connect(running.hub.amqp.port);
  client.sasl("MSSBCBS");
  const offered = await client.next("sasl_mechanisms");
  const outcome = await client.next("sasl_outcome");
  expect(outcome.performative.code).toBe(0);
  client.amqpHeader();
  client.send("open", { container_id: "raw-test", hostname: "localhost" });
  await client.next("open");
  client.send("begin", { next_outgoing_id: 0, incoming_window: 100, outgoing_window: 100 });
  const begin = await client.next("begin");
  return { mechanisms: [offered.performative.sasl_server_mechanisms].flat().map(String), begin };
}

/** A request/response pair of links on a node ($cbs, $management): our sender on handle 0, our receiver on 1. */
async function requestLinks(node: string): Promise<{ hubReceiver: Received; hubSender: Received }> {
  client.send("attach", { name: `${node}-sender`, handle: 0, role: false, source: {}, target: { address: node } });
  client.send("attach", {
    name: `${node}-receiver`,
    handle: 1,
    role: true,
    source: { address: node },
    target: { address: `${node}-reply` },
  });
  const first = await client.next("attach");
  const second = await client.next("attach");
  const [hubReceiver, hubSender] = first.performative.handle === 0 ? [first, second] : [second, first];
  client.send("flow", {
    next_incoming_id: 0,
    incoming_window: 100,
    next_outgoing_id: 0,
    outgoing_window: 100,
    handle: 1,
    delivery_count: 0,
    link_credit: 10,
  });
  return { hubReceiver, hubSender };
}

async function request(node: string, id: number, properties: Record<string, unknown>, body?: string) {
  const message = amqpMessage.encode({
    message_id: id,
    reply_to: `${node}-reply`,
    application_properties: properties,
    body,
  });
  client.send("transfer", { handle: 0, delivery_id: id, delivery_tag: Buffer.from([id]), message_format: 0 }, message);
  const answer = await client.next("transfer");
  return { answer, sections: messageSections(answer.payload!) };
}

async function putToken(): Promise<ReturnType<typeof request>> {
  return request(
    "$cbs",
    0,
    { operation: "put-token", type: "servicebus.windows.net:sastoken", name: "localhost" },
    policyToken(running.hub, "iothubowner"),
  );
}

describe("AMQP as Azure writes it", () => {
  it("offers SASL MSSBCBS, which uamqp's CBS login asks for, beside ANONYMOUS and PLAIN, and accepts it without credentials", async () => {
    const { mechanisms } = await openSession();
    expect(mechanisms).toEqual(expect.arrayContaining(["MSSBCBS", "ANONYMOUS", "PLAIN"]));
    // Accepted, but it grants nothing: the links still need a token put on $cbs (amqp-security.test.ts).
  });

  it("writes BEGIN with all 8 fields, handle-max among them", async () => {
    const { begin } = await openSession();
    expect(begin.fields).toHaveLength(8);
    expect(begin.performative.handle_max).toBe(255); // Event Hubs' handle-max (vcabbage/amqp issue 56)
  });

  it("closes the connection with framing-error when a link is attached with a handle beyond handle-max", async () => {
    await openSession();
    client.send("attach", { name: "too-far", handle: 256, role: true, source: { address: "$cbs" }, target: {} });
    const close = await client.next("close");
    expect(close.performative.error).toMatchObject({ condition: "amqp:connection:framing-error" });
  });

  it("writes ATTACH with all 14 fields: max-message-size 1 MB, and an initial delivery count on the links it sends on", async () => {
    await openSession();
    const { hubReceiver, hubSender } = await requestLinks("$cbs");
    for (const attach of [hubReceiver, hubSender]) {
      expect(attach.fields).toHaveLength(14);
      expect(attach.performative.max_message_size).toBe(1_048_576);
    }
    expect(hubSender.performative.initial_delivery_count).toBe(0);
  });

  it("answers an ATTACH that carries link properties with a properties map, not null (pyamqp merges it into its own)", async () => {
    await openSession();
    client.send("attach", {
      name: "with-properties",
      handle: 0,
      role: true,
      source: { address: "$cbs" },
      target: { address: "$cbs-reply" },
      properties: { "com.microsoft:client-agent": "raw-test" },
    });
    const attach = await client.next("attach");
    expect(attach.fields[13].type.name).toMatch(/^Map/);
  });

  it("answers a CBS put-token with status-code as an AMQP int and status-description as a string, in a TRANSFER of 11 fields", async () => {
    await openSession();
    await requestLinks("$cbs");
    const { answer, sections } = await putToken();
    expect(answer.fields).toHaveLength(11);
    const properties = typedEntries(sections.get(0x74)!);
    expect(properties.get("status-code")).toMatchObject({ value: 200 });
    expect(INT_TYPES).toContain(properties.get("status-code")!.type.name);
    expect(STRING_TYPES).toContain(properties.get("status-description")!.type.name);
  });

  it("answers a refused put-token with status-code 401 as an AMQP int", async () => {
    await openSession();
    await requestLinks("$cbs");
    const { sections } = await request(
      "$cbs",
      0,
      { operation: "put-token", type: "servicebus.windows.net:sastoken", name: "localhost" },
      policyToken(running.hub, "iothubowner", true),
    );
    const status = typedEntries(sections.get(0x74)!).get("status-code")!;
    expect([status.value, INT_TYPES.includes(status.type.name)]).toEqual([401, true]);
  });

  it("answers a management READ with status-code and partition_count as AMQP ints", async () => {
    await openSession();
    await requestLinks("$cbs");
    await putToken();
    client.send("attach", {
      name: "mgmt-sender",
      handle: 2,
      role: false,
      source: {},
      target: { address: "$management" },
    });
    client.send("attach", {
      name: "mgmt-receiver",
      handle: 3,
      role: true,
      source: { address: "$management" },
      target: { address: "$management-reply" },
    });
    await client.next("attach");
    await client.next("attach");
    client.send("flow", {
      next_incoming_id: 1,
      incoming_window: 100,
      next_outgoing_id: 1,
      outgoing_window: 100,
      handle: 3,
      delivery_count: 0,
      link_credit: 10,
    });
    const message = amqpMessage.encode({
      message_id: 1,
      reply_to: "$management-reply",
      application_properties: {
        operation: "READ",
        name: running.hub.amqp.entityName,
        type: "com.microsoft:eventhub",
      },
    });
    client.send("transfer", { handle: 2, delivery_id: 1, delivery_tag: Buffer.from([1]), message_format: 0 }, message);
    const answer = await client.next("transfer");
    const sections = messageSections(answer.payload!);
    const status = typedEntries(sections.get(0x74)!).get("status-code")!;
    expect([status.value, INT_TYPES.includes(status.type.name)]).toEqual([200, true]);
    const body = typedEntries(sections.get(0x77)!);
    expect(body.get("partition_count")).toMatchObject({ value: running.hub.core.telemetry.partitionCount });
    expect(INT_TYPES).toContain(body.get("partition_count")!.type.name);
  });
});
