/**
 * WebSocket upgrades on the HTTPS port: `/$iothub/websocket` carries MQTT (subprotocol `mqtt`) or AMQP
 * (`AMQPWSB10`), as on the real hub. Anything else is refused before a frame is read; messages have a size limit,
 * each protocol its own.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { TLSSocket } from "node:tls";
import { WebSocketServer, createWebSocketStream } from "ws";
import type { WebSocket } from "ws";
import type { MqttEdge } from "./mqtt/broker";

/** Larger than any MQTT packet the hub accepts (session.ts); `ws` would otherwise accept 100 MiB. */
export const MAX_WEBSOCKET_FRAME_BYTES = 512 * 1024;
const PATH = "/$iothub/websocket";

export class WebSocketEdge {
  private readonly mqttServer = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_WEBSOCKET_FRAME_BYTES,
    handleProtocols: (protocols) => (protocols.has("mqtt") ? "mqtt" : false),
  });
  /** `ws` buffers a whole message before it is read: AMQP's are bounded by the frame size the AMQP edge announces. */
  private readonly amqpServer: WebSocketServer;

  constructor(
    private readonly mqtt: MqttEdge,
    private readonly log: (line: string) => void,
    /** Serves AMQP over an upgraded WebSocket (the AMQP edge's acceptWebSocket). */
    private readonly acceptAmqp: (ws: WebSocket, remote?: string, tls?: TLSSocket) => void,
    /** The largest AMQPWSB10 message (the AMQP edge's MAX_AMQP_WEBSOCKET_MESSAGE). */
    amqpMaxMessageBytes: number,
  ) {
    this.amqpServer = new WebSocketServer({
      noServer: true,
      maxPayload: amqpMaxMessageBytes,
      handleProtocols: (protocols) => (protocols.has("AMQPWSB10") ? "AMQPWSB10" : false),
    });
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? "").split("?")[0];
    if (path !== PATH) {
      this.log(`WebSocket upgrade refused: unknown path ${path.slice(0, 100)}`);
      socket.destroy();
      return;
    }
    socket.on("error", () => socket.destroy());
    // The subprotocols the client offers pick the server (and so the message size limit); MQTT first, as before.
    const offered = String(req.headers["sec-websocket-protocol"] ?? "")
      .split(",")
      .map((p) => p.trim());
    const server = !offered.includes("mqtt") && offered.includes("AMQPWSB10") ? this.amqpServer : this.mqttServer;
    server.handleUpgrade(req, socket, head, (ws) => {
      ws.on("error", (err) => this.log(`WebSocket closed: ${err.message}`));
      // The HTTPS connection's client certificate, if any, authenticates an X.509 device as on 8883 and 5671.
      const tls = req.socket instanceof TLSSocket ? req.socket : undefined;
      if (ws.protocol === "AMQPWSB10") this.acceptAmqp(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`, tls);
      else this.mqtt.accept(createWebSocketStream(ws), "websocket", tls);
    });
  }

  closeAll(): void {
    for (const client of [...this.mqttServer.clients, ...this.amqpServer.clients]) client.terminate();
  }
}
