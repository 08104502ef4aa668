/**
 * @summary `npm run hub`: runs the local IoT hub in the foreground until Ctrl-C.
 *
 * Usage: npm run hub -- [--data DIR] [--in-memory] [--quiet]
 */
import { parseArgs } from "node:util";
import { PortError, startHub } from "./hub";

const USAGE = "Usage: npm run hub -- [--data DIR] [--in-memory] [--quiet]";

function maskKey(connectionString: string): string {
  return connectionString.replace(/(SharedAccessKey=)(.{4})[^;]*/, "$1$2…");
}

export async function main(): Promise<void> {
  // Whoever reads our output may go away first (a closed pipe): that must not crash the hub.
  process.stdout.on("error", () => {});
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        data: { type: "string", default: ".localhub" },
        "in-memory": { type: "boolean", default: false },
        quiet: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (err) {
    console.error(`Error: ${(err as Error).message}. ${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }

  const quiet = values.quiet;
  const hub = await startHub({
    dataDir: values.data,
    inMemory: values["in-memory"],
    log: quiet ? undefined : (line) => console.log(`[hub] ${line}`),
  });

  console.log(`Local IoT hub listening on ${hub.listening.join(", ")}`);
  console.log(`State: ${values["in-memory"] ? "in memory (lost on exit)" : `${hub.dataDir}/state`}`);
  console.log(`Connection string (iothubowner) and CA path written to ${hub.envPath}:`);
  console.log(`  IOTHUB_CONNECTION_STRING="${maskKey(hub.connectionString)}"   (full key in ${hub.envPath})`);
  console.log("In the shell where you run the tutorial scripts, trust the hub's certificate authority first:");
  console.log(`  export NODE_EXTRA_CA_CERTS=${hub.caPath}`);
  console.log("Local IoT hub ready. Press Ctrl-C to stop.");

  const shutdown = (signal: string) => {
    console.log(`Received ${signal}: closing connections and flushing state...`);
    hub.stop().then(
      () => process.exit(0),
      (err) => {
        console.error(`Error while stopping: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
}

if (require.main === module) {
  main().catch((err) => {
    console.error(
      `Error: ${err instanceof PortError ? err.message : `the local hub failed to start: ${(err as Error).message}`}`,
    );
    process.exit(1);
  });
}
