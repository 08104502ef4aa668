/** `npm run hub`'s program as its own process, for tests of the CLI and of kill -9. */
import * as fs from "node:fs";
import * as path from "node:path";
import { setPortMap } from "../localhub";
import { copyTestCertificates } from "./hub";
import { NODE_WITH_TSX, ROOT } from "./paths";
import { ProcessRun, StartOptions, startProcess } from "./processes";

export interface HubProcess extends ProcessRun {
  /** Resolves once the CLI printed its ready line (signals are handled from then on); rejects if it ends first. */
  ready(): Promise<void>;
  /** The iothubowner connection string from DIR/env; sends this process's localhost:443/8883 to the hub's ports. */
  connect(): string;
}

/** Starts the CLI on `dataDir` (with the test certificates); `--https-port 0 --mqtt-port 0` unless ports are given. */
export function spawnHubCli(
  dataDir: string,
  flags: string[] = ["--https-port", "0", "--mqtt-port", "0"],
  options: StartOptions = {},
): HubProcess {
  copyTestCertificates(dataDir);
  const [node, ...nodeArgs] = NODE_WITH_TSX;
  const run = startProcess(node, [...nodeArgs, path.join(ROOT, "test/localhub/cli.ts"), "--data", dataDir, ...flags], {
    env: process.env,
    label: "the hub",
    ...options,
  });
  return Object.assign(run, {
    // Its own line: "already in use" holds "ready" too.
    ready: () => run.waitForOutput(/^Local IoT hub ready\./m, 20_000),
    connect: () => {
      const env = fs.readFileSync(path.join(dataDir, "env"), "utf8");
      const map = /^LOCALHUB_PORT_MAP=(.*)$/m.exec(env)?.[1] ?? "";
      const pairs = map
        .split(",")
        .filter(Boolean)
        .map((pair): [number, number] => {
          const [from, to] = pair.split("=").map(Number);
          return [from, to];
        });
      setPortMap(Object.fromEntries(pairs));
      return /IOTHUB_CONNECTION_STRING="([^"]+)"/.exec(env)![1];
    },
  });
}
