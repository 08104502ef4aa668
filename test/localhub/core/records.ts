/**
 * What the core keeps in the store, and under which keys. One file so that a reader sees the whole durable state at a
 * glance: identities with their twins, the policies, persistent MQTT sessions and the etag counter.
 */
import type { ProvisioningRecord } from "./provisioning/dps-records";
import type { TwinState } from "./twin-document";

export type Permission = "RegistryRead" | "RegistryWrite" | "ServiceConnect" | "DeviceConnect";

export interface Policy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: Permission[];
}

/** Null for identities that authenticate with X.509 certificates. */
export interface SymmetricKeys {
  primaryKey: string | null;
  secondaryKey: string | null;
}

export interface Identity {
  deviceId: string;
  moduleId?: string;
  generationId: string;
  etag: string;
  managedBy?: string;
  status?: "enabled" | "disabled";
  statusReason?: string | null;
  statusUpdatedTime: string;
  connectionStateUpdatedTime: string;
  lastActivityTime: string;
  capabilities?: { iotEdge: boolean };
  /** IoT Edge: an Edge device's own scope, or a leaf device's parent's. */
  deviceScope?: string;
  parentScopes?: string[];
  authentication: {
    type: string;
    symmetricKey: SymmetricKeys;
    x509Thumbprint: { primaryThumbprint: string | null; secondaryThumbprint: string | null };
  };
  twin: TwinState;
}

/**
 * A record in the store: an identity with its twin, the list of policies, a session's subscriptions, a counter, or
 * one of the provisioning service's (keys `dps:...`, core/provisioning/dps-records.ts).
 */
export type StoredRecord = Identity | Policy[] | string[] | number | ProvisioningRecord;

export const POLICIES_KEY = "policies";
export const ETAG_SEQUENCE_KEY = "etagSequence";
export const SESSION_PREFIX = "session:";

export const identityKey = (deviceId: string, moduleId?: string): string =>
  moduleId === undefined ? deviceId : `${deviceId}/${moduleId}`;

/** `devices/{id}` or `devices/{id}/modules/{mid}`: an identity's path in tokens, REST resources and MQTT topics. */
export const identityPath = (deviceId: string, moduleId?: string): string =>
  moduleId === undefined ? `devices/${deviceId}` : `devices/${deviceId}/modules/${moduleId}`;

export const identityStoreKey = (deviceId: string, moduleId?: string): string =>
  moduleId === undefined ? `device:${deviceId}` : `module:${deviceId}/${moduleId}`;

export const isIdentityStoreKey = (key: string): boolean => key.startsWith("device:") || key.startsWith("module:");
