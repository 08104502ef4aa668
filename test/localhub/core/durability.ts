/**
 * How the core waits for the store. A write waits until its change is durable and turns a disk that refuses it into
 * the hub's 503 (the store logs when the disk starts refusing and when it takes writes again); a read waits until
 * every earlier write is settled, so it shows nothing a crash could undo, and is still served while writes are refused.
 */
import { StorageFailure, writesSettled } from "../store/store";
import type { Store } from "../store/store";
import { HubError } from "./errors";

export class Durability {
  constructor(private readonly store: Store<unknown>) {}

  async committed(): Promise<void> {
    try {
      await this.store.sync();
    } catch (err) {
      if (!(err instanceof StorageFailure)) throw err;
      throw new HubError(503, "ServiceUnavailable", "The change could not be stored; try again later");
    }
  }

  settled(): Promise<void> {
    return writesSettled(this.store);
  }
}
