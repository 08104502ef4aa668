/**
 * The portal's live view over server-sent events: the identities with their connection state, the selected twin,
 * the faults, the selected device's telemetry and the outcome of C2D messages, each sent when it changes. Bounded:
 * a few clients at once, and a client that stops reading is dropped, not buffered for.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { SettledMessage } from "../../core/cloud-to-device";
import { faultJson } from "../admin/fault-actions";
import { PortalContext, identitiesView } from "./api";
import { followTelemetry, isFromDevice, recentTelemetry, telemetryView } from "./telemetry-feed";

/** Browser tabs watching at once; more get 503. */
export const MAX_SSE_CLIENTS = 16;
/** Bytes waiting for one client; past this it is dropped (one log line). */
export const MAX_SSE_BUFFER_BYTES = 1024 * 1024;
/** How often the identities, twin and faults are compared with what each client last got. */
export const WATCH_INTERVAL_MS = 500;
/** A comment line now and then, so that nothing between closes an idle stream. */
const HEARTBEAT_MS = 15_000;

interface Client {
  res: ServerResponse;
  deviceId?: string;
  moduleId?: string;
  sent: Map<string, string>;
}

export class LiveFeed {
  private readonly clients = new Set<Client>();
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private unfollow: (() => void) | undefined;
  private readonly onSettled = (outcome: SettledMessage) => this.broadcast("cloud-to-device", outcome);

  constructor(
    private readonly context: PortalContext,
    private readonly log: (line: string) => void,
  ) {}

  attach(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): void {
    if (this.clients.size >= MAX_SSE_CLIENTS) {
      res.writeHead(503, { "Content-Type": "text/plain; charset=utf-8" });
      res.end(`At most ${MAX_SSE_CLIENTS} portal pages may watch at once: close some tabs.`);
      this.log(`PORTAL live view refused: ${MAX_SSE_CLIENTS} already open`);
      return;
    }
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
    });
    const client: Client = {
      res,
      deviceId: query.get("device") || undefined,
      moduleId: query.get("module") || undefined,
      sent: new Map(),
    };
    this.clients.add(client);
    req.on("close", () => this.detach(client));
    if (this.clients.size === 1) this.start();
    this.refresh(client);
    if (client.deviceId) {
      this.send(client, "telemetry-history", recentTelemetry(this.context.core.telemetry, client.deviceId));
    }
  }

  closeAll(): void {
    for (const client of [...this.clients]) {
      client.res.end();
      this.detach(client);
    }
  }

  private start(): void {
    this.timer = setInterval(() => this.clients.forEach((c) => this.refresh(c)), WATCH_INTERVAL_MS);
    this.heartbeat = setInterval(() => this.clients.forEach((c) => this.write(c, ": heartbeat\n\n")), HEARTBEAT_MS);
    this.unfollow = followTelemetry(this.context.core.telemetry, (event) => {
      for (const client of this.clients) {
        if (client.deviceId && isFromDevice(event, client.deviceId))
          this.send(client, "telemetry", telemetryView(event));
      }
    });
    this.context.core.cloudToDevice.on("settled", this.onSettled);
  }

  private detach(client: Client): void {
    if (!this.clients.delete(client) || this.clients.size) return;
    clearInterval(this.timer);
    clearInterval(this.heartbeat);
    this.unfollow?.();
    this.context.core.cloudToDevice.off("settled", this.onSettled);
  }

  /** Sends what changed since the client's last copy. */
  private refresh(client: Client): void {
    const { core, faults } = this.context;
    this.sendIfChanged(client, "identities", identitiesView(core));
    this.sendIfChanged(client, "faults", { faults: faults.list().map((state) => faultJson(state)) });
    if (client.deviceId) {
      const identity = core.identities.find(client.deviceId, client.moduleId);
      this.sendIfChanged(client, "twin", identity ? core.twins.json(identity) : null);
    }
  }

  private sendIfChanged(client: Client, event: string, data: unknown): void {
    const json = JSON.stringify(data);
    if (client.sent.get(event) === json) return;
    client.sent.set(event, json);
    this.write(client, `event: ${event}\ndata: ${json}\n\n`);
  }

  private send(client: Client, event: string, data: unknown): void {
    this.write(client, `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private broadcast(event: string, data: unknown): void {
    for (const client of this.clients) this.send(client, event, data);
  }

  private write(client: Client, text: string): void {
    client.res.write(text);
    if (client.res.writableLength > MAX_SSE_BUFFER_BYTES) {
      this.log(
        `PORTAL live view dropped: more than ${MAX_SSE_BUFFER_BYTES} bytes waiting for a page that does not read`,
      );
      client.res.destroy();
      this.detach(client);
    }
  }
}
