/**
 * The optional trailing fields Azure writes in OPEN, BEGIN, ATTACH, FLOW, TRANSFER and DISPOSITION. AMQP lets a peer
 * leave them out, and rhea does; pyamqp (azure-eventhub 5.11) reads them by position and fails on a shorter frame.
 *
 * Source: IoT Hub's frames as uamqp-c traced them (Azure/azure-iot-sdk-c issue 2233):
 *   <- [OPEN]*   {<container>,localhost,65536,8191,240000,NULL,NULL,NULL,NULL,NULL}
 *   <- [BEGIN]*  {0,1,5000,4294967295,262143,NULL,NULL,NULL}
 *   <- [ATTACH]* {$cbs-receiver,1,false,0,0,{$cbs..},{$cbs..},NULL,NULL,0,1048576,NULL,NULL,NULL}
 *   <- [FLOW]* {0,5000,1,4294967295,0,0,100,0,NULL,false,NULL}
 *   <- [TRANSFER]* {1,0,<01 00 00 00>,0,NULL,false,NULL,NULL,NULL,NULL,false}
 *   <- [DISPOSITION]* {true,0,NULL,true,* {},NULL}
 * Event Hubs answers BEGIN with handle-max 255 (vcabbage/amqp issue 56); the hub takes the smaller.
 */
import type { Connection, ConnectionOptions, Receiver, Sender, Session } from "rhea";
import { HANDLE_MAX, MAX_INCOMING_MESSAGE_BYTES as MAX_MESSAGE_SIZE } from "./limits";

/** What every ATTACH of the hub carries besides its terminus: 14 fields, the absent ones as null. */
const ATTACH_FIELDS = {
  max_message_size: MAX_MESSAGE_SIZE,
  offered_capabilities: null,
  desired_capabilities: null,
  properties: null,
};

/** Connection options that make rhea write OPEN and ATTACH in full (link options apply to the links peers open). */
export function azureFrameOptions(): Partial<ConnectionOptions> {
  return {
    outgoing_locales: null,
    incoming_locales: null,
    offered_capabilities: null,
    desired_capabilities: null,
    properties: null,
    sender_options: { ...ATTACH_FIELDS },
    receiver_options: { ...ATTACH_FIELDS },
  } as unknown as Partial<ConnectionOptions>;
}

type Performative = Record<string, unknown> & { constructor: { descriptor?: { numeric?: number } } };

/** Fields rhea leaves out of a performative it writes, filled in as Azure writes them, by descriptor code. */
const TRAILING: Record<number, Record<string, null | boolean>> = {
  0x13: { properties: null }, // FLOW: 11 fields (pyamqp reads `handle`, the 5th, on session flows too)
  0x14: { batchable: false }, // TRANSFER: 11 fields (pyamqp takes the payload as the 12th)
  0x15: { batchable: null }, // DISPOSITION: 6 fields
};

/**
 * rhea builds a session's BEGIN, and its FLOW, TRANSFER and DISPOSITION frames, with no option for the trailing
 * fields: fill them in on each session the peer begins (create_session is where rhea makes it, and session.output
 * what every frame of it goes through), on this connection only.
 */
export function writeFramesInFull(connection: Connection): void {
  const create = connection.create_session.bind(connection);
  connection.create_session = (size?: Parameters<Connection["create_session"]>[0]): Session => {
    const session = create(size) as Session & {
      local: { begin: Performative };
      output(frame: Performative, payload?: Buffer): void;
    };
    session.local.begin.handle_max = HANDLE_MAX;
    session.local.begin.properties = null;
    const output = session.output.bind(session);
    session.output = (frame, payload) => {
      const trailing = TRAILING[frame.constructor.descriptor?.numeric ?? -1];
      if (trailing)
        for (const [field, value] of Object.entries(trailing)) if (frame[field] === undefined) frame[field] = value;
      output(frame, payload);
    };
    return session;
  };
}

/**
 * A peer that attaches with link properties gets a map back, never null: pyamqp 5.11 merges the answer into its own
 * (`properties.update(frame[13])`, link.py) and fails on null. What Event Hubs puts in it is not recorded here.
 */
export function answerLinkProperties(link: Sender | Receiver): void {
  const ends = link as unknown as { remote: { attach?: { properties?: unknown } }; local: { attach: Performative } };
  if (ends.remote.attach?.properties && ends.local.attach.properties == null) ends.local.attach.properties = {};
}
