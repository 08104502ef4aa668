/**
 * A disk for the journal store that fills up or fails on demand (through the store's I/O seam), so that tests can
 * prove what the hub does when a change cannot be made durable, without mocking anything its clients see.
 */
import * as fs from "node:fs";
import { diskIo, type JournalFile, type JournalIo } from "../localhub";

const osError = (code: string) => Object.assign(new Error(`${code}: simulated by the test`), { code });

export class FailingDisk implements JournalIo {
  /** Appends write half their data, then fail with ENOSPC, as a filling disk does. */
  full = false;
  /** Flushes fail with EIO. */
  ioError = false;
  /** Snapshot writes leave a partial temporary file and fail with ENOSPC. */
  snapshotFails = false;
  datasyncs = 0;

  async openAppend(file: string): Promise<JournalFile> {
    const real = await diskIo.openAppend(file);
    return {
      append: async (data) => {
        if (this.full) {
          await real.append(data.slice(0, Math.floor(data.length / 2)));
          throw osError("ENOSPC");
        }
        await real.append(data);
      },
      datasync: async () => {
        this.datasyncs++;
        if (this.ioError) throw osError("EIO");
        await real.datasync();
      },
      truncate: (length) => real.truncate(length),
      size: () => real.size(),
      close: () => real.close(),
    };
  }

  async writeDurably(file: string, data: string): Promise<void> {
    if (this.snapshotFails || this.full) {
      fs.writeFileSync(file, data.slice(0, 10));
      throw osError("ENOSPC");
    }
    await diskIo.writeDurably(file, data);
  }

  rename(from: string, to: string): Promise<void> {
    return diskIo.rename(from, to);
  }

  remove(file: string): Promise<void> {
    return diskIo.remove(file);
  }

  syncDirectory(dir: string): Promise<void> {
    return diskIo.syncDirectory(dir);
  }
}
