import { message as amqpMessage } from "rhea";
import { encodeEvent } from "../localhub/edges/amqp/encode-event";
import type { LoggedEvent } from "../localhub/store/event-log";

const event = (extra: Partial<LoggedEvent> = {}): LoggedEvent => ({
  body: Buffer.from('{"t":21}'),
  properties: { alert: "hot", level: 2, urgent: true },
  messageProperties: { message_id: "m1", correlation_id: "c1", content_type: "application/json", user_id: "u" },
  annotations: { "iothub-connection-device-id": "dev1", "iothub-message-source": "Telemetry" },
  partition: 1,
  sequenceNumber: 5_000_000_000,
  offset: 123456,
  enqueuedTimeMs: 1_795_728_000_123,
  ...extra,
});

describe("encodeEvent", () => {
  it("writes what an AMQP decoder reads back as the Event Hubs message", () => {
    const decoded = amqpMessage.decode(encodeEvent(event())) as unknown as Record<string, any>;
    expect(decoded.message_annotations).toEqual({
      "iothub-connection-device-id": "dev1",
      "iothub-message-source": "Telemetry",
      "iothub-enqueuedtime": new Date(1_795_728_000_123),
      "x-opt-sequence-number": 5_000_000_000,
      "x-opt-offset": "123456",
      "x-opt-enqueued-time": new Date(1_795_728_000_123),
    });
    expect(decoded.application_properties).toEqual({ alert: "hot", level: 2, urgent: true });
    expect([decoded.message_id, decoded.correlation_id, decoded.content_type]).toEqual([
      "m1",
      "c1",
      "application/json",
    ]);
    expect(Buffer.from(decoded.user_id).toString()).toBe("u");
    expect(Buffer.from(decoded.body.content).toString()).toBe('{"t":21}');
  });

  it("writes an event without properties and with an empty body", () => {
    const decoded = amqpMessage.decode(
      encodeEvent(event({ body: Buffer.alloc(0), properties: {}, messageProperties: {} })),
    ) as unknown as Record<string, any>;
    expect(decoded.application_properties).toBeUndefined();
    expect(decoded.message_id).toBeUndefined();
    expect(Buffer.from(decoded.body.content).length).toBe(0);
  });

  it("writes a 256 KB body whole", () => {
    const body = Buffer.alloc(256 * 1024, 7);
    const decoded = amqpMessage.decode(encodeEvent(event({ body }))) as unknown as Record<string, any>;
    expect(Buffer.compare(Buffer.from(decoded.body.content), body)).toBe(0);
  });
});
