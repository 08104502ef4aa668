/**
 * What the core announces to the edges, always after the change is durable: a desired-properties patch for one
 * identity, an identity whose connections must end, a direct method to deliver. Edges subscribe; the core never
 * calls an edge directly.
 */
import { EventEmitter } from "node:events";
import type { MethodRequest } from "./methods";
import type { JsonObject } from "./twin-document";

export interface DesiredChange {
  deviceId: string;
  moduleId?: string;
  patch: JsonObject;
  version: number;
}

export interface Revocation {
  /** `device` or `device/module`. */
  key: string;
  /** A device's revocation ends its modules' connections too. */
  withModules: boolean;
}

interface HubEventMap {
  desired: [DesiredChange];
  revoked: [Revocation];
  /** A direct method for an identity; the edge that can deliver it calls `methods.delivered(rid)`. */
  method: [MethodRequest];
}

export class HubEvents extends EventEmitter<HubEventMap> {}
