/**
 * The hub's shared access policies: the five defaults with generated keys, made on first start and kept.
 */
import { randomBytes } from "node:crypto";
import type { Store } from "../store/store";
import { POLICIES_KEY, Permission, Policy, StoredRecord } from "./records";

export const DEFAULT_POLICY_RIGHTS: Record<string, Permission[]> = {
  iothubowner: ["RegistryWrite", "ServiceConnect", "DeviceConnect"],
  service: ["ServiceConnect"],
  device: ["DeviceConnect"],
  registryRead: ["RegistryRead"],
  registryReadWrite: ["RegistryWrite"],
};

export const generateKey = (): string => randomBytes(32).toString("base64");

export class Policies {
  private readonly all: Policy[];

  constructor(store: Store<StoredRecord>) {
    const stored = store.entries.get(POLICIES_KEY) as Policy[] | undefined;
    this.all =
      stored ??
      Object.entries(DEFAULT_POLICY_RIGHTS).map(([keyName, rights]) => ({
        keyName,
        primaryKey: generateKey(),
        secondaryKey: generateKey(),
        rights,
      }));
    if (!stored) store.put(POLICIES_KEY, this.all);
  }

  find(keyName: string): Policy | undefined {
    return this.all.find((p) => p.keyName === keyName);
  }
}
