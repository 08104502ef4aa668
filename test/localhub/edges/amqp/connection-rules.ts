/**
 * The limits a connection announced, enforced on the client's frames before rhea acts on them (rhea answers every
 * BEGIN and ATTACH it is given): max-frame-size at least 512, channel-max, handle-max and links per connection.
 */
import type { GuardedFrame, Refusal } from "./frame-guard";
import { CHANNEL_MAX, HANDLE_MAX, MAX_LINKS_PER_CONNECTION, MIN_MAX_FRAME_SIZE } from "./limits";

const OPEN = 0x10;
const BEGIN = 0x11;
const ATTACH = 0x12;
const FLOW = 0x13;
const DISPOSITION = 0x15;
const DETACH = 0x16;
const END = 0x17;
const FRAMING = "amqp:connection:framing-error";

export class ConnectionRules {
  /** The client's sessions by channel, each with the handles of its links that the client has not detached. */
  private readonly sessions = new Map<number, Set<number>>();
  /** Channels whose session the client has ended, until it begins one there again. */
  private readonly ended = new Set<number>();
  private links = 0;

  /**
   * A Refusal ends the connection. "discard": a settlement or credit the client sends on a channel after its own END
   * (the Event Hubs client settles what it already received while it closes); rhea would drop the whole connection for
   * it, and the client would wait on its CLOSE forever.
   */
  inspect({ channel, performative }: GuardedFrame): Refusal | "discard" | undefined {
    const { code, fields } = performative;
    if (code === OPEN) {
      const maxFrameSize = fields[2];
      if (typeof maxFrameSize === "number" && maxFrameSize < MIN_MAX_FRAME_SIZE) {
        return { condition: FRAMING, description: `max-frame-size ${maxFrameSize} is below ${MIN_MAX_FRAME_SIZE}` };
      }
      return undefined;
    }
    if (code === BEGIN) {
      if (channel > CHANNEL_MAX) {
        return { condition: FRAMING, description: `BEGIN on channel ${channel}, above channel-max ${CHANNEL_MAX}` };
      }
      if (this.sessions.has(channel)) {
        return { condition: FRAMING, description: `BEGIN on channel ${channel}, which has a session already` };
      }
      this.sessions.set(channel, new Set());
      this.ended.delete(channel);
      return undefined;
    }
    if ((code === DISPOSITION || code === FLOW) && this.ended.has(channel)) return "discard";
    const handles = this.sessions.get(channel);
    if (!handles) return undefined; // rhea refuses a frame on a channel without a session
    if (code === END) {
      this.links -= handles.size;
      this.sessions.delete(channel);
      this.ended.add(channel);
    } else if (code === ATTACH) {
      const handle = fields[1];
      if (typeof handle !== "number") return undefined; // rhea refuses an ATTACH without a handle
      if (handle > HANDLE_MAX) {
        return { condition: FRAMING, description: `ATTACH with handle ${handle}, above handle-max ${HANDLE_MAX}` };
      }
      if (handles.has(handle)) {
        return { condition: "amqp:session:handle-in-use", description: `ATTACH with handle ${handle}, in use` };
      }
      if (this.links >= MAX_LINKS_PER_CONNECTION) {
        return {
          condition: "amqp:resource-limit-exceeded",
          description: `more than ${MAX_LINKS_PER_CONNECTION} links on one connection`,
        };
      }
      handles.add(handle);
      this.links++;
    } else if (code === DETACH) {
      const handle = fields[0];
      if (typeof handle === "number" && handles.delete(handle)) this.links--;
    }
    return undefined;
  }
}
