/**
 * Every limit the AMQP edge announces or enforces, in one place: the frame guard (frame-guard.ts), the connection
 * rules (connection-rules.ts) and server.ts import them from here, and the README's limits table lists them.
 */

/** Connections served at once (TLS and WebSockets together); past it a new one is closed at once. */
export const MAX_CONNECTIONS = 1024;
/** The max-frame-size we announce in OPEN, and the largest frame we read once OPEN has come. */
export const MAX_FRAME_SIZE = 65_536;
/** AMQP 1.0's MIN-MAX-FRAME-SIZE: the largest SASL frame, and the smallest max-frame-size a peer may announce. */
export const MIN_MAX_FRAME_SIZE = 512;
/** The channel-max we announce: channels 0-255, so at most 256 sessions on a connection. */
export const CHANNEL_MAX = 255;
/**
 * The handle-max we announce in BEGIN (azure-frames.ts writes it): Event Hubs' value, so at most 256 links on a
 * session; a handle above it closes the connection with framing-error (AMQP 1.0 section 2.7.2).
 */
export const HANDLE_MAX = 255;
/** Links attached at once on one connection, over all its sessions. */
export const MAX_LINKS_PER_CONNECTION = 256;
/** Compounds, arrays and descriptors nested deeper than this in one value are refused (rhea decodes recursively). */
export const MAX_NESTING = 32;
/** A connection must finish SASL and OPEN within this, as MQTT must send CONNECT (edges/mqtt/session.ts). */
export const OPEN_TIMEOUT_MS = 10_000;
/**
 * The max-message-size every ATTACH announces (1 MB, as IoT Hub and Event Hubs Standard do), and the largest message
 * the edge gathers: larger than any a client may send here (C2D: 64 KB; CBS and management requests: a few KB).
 */
export const MAX_INCOMING_MESSAGE_BYTES = 1024 * 1024;
/** Messages in progress on one connection, over all its links (each counted up to MAX_INCOMING_MESSAGE_BYTES). */
export const MAX_GATHERED_BYTES = 4 * MAX_INCOMING_MESSAGE_BYTES;
/** The idle-time-out we announce: a peer that sends nothing, not even an empty frame, for twice this is closed. */
export const IDLE_TIMEOUT_MS = 120_000;
/** Bytes written to a client and not yet taken by it; past this, event readers pause until it drains. */
export const MAX_UNREAD_BYTES = 4 * 1024 * 1024;
/**
 * The largest WebSocket message on AMQPWSB10: one frame of MAX_FRAME_SIZE, plus the 8-byte protocol header a client
 * may send in the same message. `ws` buffers a whole message before we see a byte of it.
 */
export const MAX_AMQP_WEBSOCKET_MESSAGE = MAX_FRAME_SIZE + 8;
/** Twin requests of one device link served at once; past this they are answered 429 (device-twin.ts). */
export const MAX_TWIN_REQUESTS_IN_FLIGHT = 64;
/**
 * Messages the hub holds for one device link that gives no credit or whose connection does not read (desired patches,
 * method calls); past this the link is closed with amqp:resource-limit-exceeded (device-link-outbox.ts).
 */
export const MAX_DEVICE_LINK_BACKLOG = 1000;
