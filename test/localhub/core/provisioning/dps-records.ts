/**
 * What the provisioning service keeps in the hub's store, and under which keys: its settings (ID scope, its own
 * access policies), individual enrollments, enrollment groups and registration states. Enrollments are kept as the
 * JSON the service answers with, so a read gives back exactly what was acknowledged.
 */
import type { JsonObject } from "../twin-document";

export type DpsRight =
  "ServiceConfig" | "EnrollmentRead" | "EnrollmentWrite" | "RegistrationStatusRead" | "RegistrationStatusWrite";

export interface DpsPolicy {
  keyName: string;
  primaryKey: string;
  secondaryKey: string;
  rights: DpsRight[];
}

export interface DpsSettings {
  kind: "dps-settings";
  idScope: string;
  policies: DpsPolicy[];
}

export interface EnrollmentRecord {
  kind: "enrollment" | "enrollment-group";
  json: JsonObject;
  /** X.509 attestation: the PEM certificates, which the service keeps but never answers (only their info). */
  certificates?: { primary?: string; secondary?: string };
}

export interface RegistrationRecord {
  kind: "registration";
  json: JsonObject;
  /** The last register call's operation: a device polls it (also after a restart of the hub). */
  operationId: string;
}

export type ProvisioningRecord = DpsSettings | EnrollmentRecord | RegistrationRecord;

export const DPS_SETTINGS_KEY = "dps:settings";
/** Registration ids are case-insensitive on Azure: keys hold them lowercased. */
export const enrollmentKey = (registrationId: string): string => `dps:enrollment:${registrationId.toLowerCase()}`;
export const groupKey = (groupId: string): string => `dps:group:${groupId.toLowerCase()}`;
export const registrationKey = (registrationId: string): string => `dps:registration:${registrationId.toLowerCase()}`;
