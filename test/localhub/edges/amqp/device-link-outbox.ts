/**
 * What the hub sends a device on its own initiative (desired patches, method calls) waits here while the device's
 * link has no credit or its connection does not read; a device that lets too much pile up loses the link.
 */
import type { Message, Sender } from "rhea";
import { MAX_DEVICE_LINK_BACKLOG } from "./limits";
import type { LinkContext } from "./link-context";

export class DeviceLinkOutbox {
  private readonly waiting: Message[] = [];
  private closed = false;

  constructor(
    private readonly context: LinkContext,
    private readonly link: Sender,
    private readonly what: string,
  ) {}

  /** Sends now when it can, else keeps the message in order. */
  send(message: Message): void {
    if (this.closed) return;
    if (!this.waiting.length && this.ready()) return void this.deliver(message);
    if (this.waiting.length >= MAX_DEVICE_LINK_BACKLOG) {
      this.closed = true;
      this.waiting.length = 0;
      const description = `more than ${MAX_DEVICE_LINK_BACKLOG} messages wait for the device to read its ${this.what}`;
      this.context.deps.log(`AMQP closed the ${this.what} link of ${this.context.state.label}: ${description}`);
      this.link.close({ condition: "amqp:resource-limit-exceeded", description });
      return;
    }
    this.waiting.push(message);
  }

  /** The link got credit or the connection drained: send what waits. */
  flush(): void {
    while (this.waiting.length && this.ready()) this.deliver(this.waiting.shift()!);
  }

  close(): void {
    this.closed = true;
    this.waiting.length = 0;
  }

  private ready(): boolean {
    return this.link.is_open() && this.link.sendable() && !this.context.state.congested();
  }

  private deliver(message: Message): void {
    this.context.state.batchWrites();
    this.link.send(message);
  }
}
