import { message as amqpMessage, types } from "rhea";
import { EncodingError, checkValues, readPerformative } from "../localhub/edges/amqp/encoding-check";
import { MAX_NESTING } from "../localhub/edges/amqp/limits";

/** `depth` list8s, each holding the next, the innermost a null. */
const nested = (depth: number): Buffer => {
  const inner = depth === 1 ? Buffer.from([0x40]) : nested(depth - 1);
  return Buffer.concat([Buffer.from([0xc0, inner.length + 1, 1]), inner]);
};
const check = (bytes: Buffer) => checkValues(bytes, 0, bytes.length);
const u32 = (value: number) => {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value);
  return bytes;
};

describe("the encoding check lets through what AMQP clients write", () => {
  it.each([
    [
      "a C2D message with properties and a binary body",
      {
        message_id: "m1",
        to: "/devices/d/messages/devicebound",
        application_properties: { "iothub-ack": "full", n: 5, big: 2 ** 40, f: 1.5, t: true, nothing: null },
        body: amqpMessage.data_section(Buffer.from("hello")),
      },
    ],
    [
      "a CBS put-token request",
      {
        reply_to: "cbs",
        application_properties: { operation: "put-token", type: "servicebus.windows.net:sastoken", name: "sb://x/y" },
        body: "SharedAccessSignature sr=x&sig=y&se=1&skn=z",
      },
    ],
    [
      "annotations, a timestamp, nested lists and maps",
      {
        message_annotations: { "x-opt-enqueued-time": new Date(0), "x-opt-offset": "-1" },
        creation_time: new Date(),
        body: { list: [1, [2, [3, { deep: "x" }]]], empty: [] },
      },
    ],
    ["a 256 KB body", { body: amqpMessage.data_section(Buffer.alloc(256 * 1024, 7)) }],
    [
      "an array of symbols and a uuid",
      {
        application_properties: { id: types.wrap_uuid(Buffer.alloc(16, 1)) },
        body: types.wrap_array(["a", "b"], 0xa3, undefined),
      },
    ],
  ])("%s, as rhea encodes it", (_what, message) => {
    expect(() => check(amqpMessage.encode(message as never))).not.toThrow();
  });
});

describe("the encoding check refuses what would make rhea loop, recurse or read past the end", () => {
  it.each([
    [
      "an array32 announcing 2^32-1 nulls in 5 bytes",
      Buffer.concat([Buffer.from([0xf0]), u32(5), u32(0xffffffff), Buffer.from([0x40])]),
      /a count of 4294967295 in 5 bytes/,
    ],
    ["an array8 of 3 nulls (zero-width elements)", Buffer.from([0xe0, 2, 3, 0x40]), /a count of 3 in 2 bytes/],
    [
      "a list32 announcing more elements than bytes",
      Buffer.concat([Buffer.from([0xd0]), u32(6), u32(1000), Buffer.from([0x40, 0x40])]),
      /a count of 1000 in 6 bytes/,
    ],
    ["a list whose elements run past its announced size", Buffer.from([0xc0, 3, 1, 0xa1, 5, 0x61]), /past the end/],
    [
      "a string longer than the bytes present",
      Buffer.concat([Buffer.from([0xb1]), u32(1000), Buffer.from("abc")]),
      /a value of 1000 bytes/,
    ],
    ["an unknown typecode", Buffer.from([0x99]), /unknown typecode 0x99/],
    [`lists nested ${MAX_NESTING + 1} deep`, nested(MAX_NESTING + 1), /nested deeper than 32/],
    [
      "descriptors chained past the nesting limit",
      Buffer.concat([Buffer.alloc(MAX_NESTING + 1, 0x00), Buffer.from([0x40])]),
      /nested deeper than 32/,
    ],
  ])("%s", (_what, bytes, message) => {
    expect(() => check(Buffer.from(bytes))).toThrow(EncodingError);
    expect(() => check(Buffer.from(bytes))).toThrow(message);
  });
});

describe("readPerformative", () => {
  it("reads an OPEN's max-frame-size and a TRANSFER's handle and more flag", () => {
    const open = Buffer.from([0x00, 0x53, 0x10, 0xc0, 10, 3, 0xa1, 1, 0x78, 0x40, 0x70, 0, 0, 0, 8]);
    expect(readPerformative(open, 0, open.length, 4)).toMatchObject({ code: 0x10, fields: [undefined, null, 8] });
    const transfer = Buffer.from([0x00, 0x53, 0x14, 0xc0, 8, 6, 0x52, 3, 0x43, 0x40, 0x43, 0x40, 0x41, 0xaa]);
    expect(readPerformative(transfer, 0, transfer.length, 10)).toMatchObject({
      code: 0x14,
      fields: [3, 0, null, 0, null, true],
      end: transfer.length - 1,
    });
  });

  it("refuses a frame body that is no described list", () => {
    expect(() => readPerformative(Buffer.from([0xa1, 1, 0x78]), 0, 3, 1)).toThrow(EncodingError);
  });
});
