/**
 * @summary `npm run hub`: runs the local IoT hub in the foreground until Ctrl-C.
 *
 * Usage: npm run hub -- [--data DIR] [--in-memory] [--quiet] [--https-port N] [--mqtt-port N] [--amqp-port N]
 *        [--partitions N] [--retention-hours H] [--oauth basic] [--portal-port N] [--no-portal]
 */
import { parseArgs } from "node:util";
import { PORT_REDIRECT_PATH as REDIRECT_PATH, Shell, clientSetupLines } from "./client-setup";
import { PortError, startHub } from "./hub";

const USAGE =
  "Usage: npm run hub -- [--data DIR] [--in-memory] [--quiet] [--https-port N] [--mqtt-port N] [--amqp-port N] " +
  "[--partitions N] [--retention-hours H] [--oauth basic] [--portal-port N] [--no-portal]";
/** The shells a reader on this platform types in (WSL counts as Linux). */
const SHELLS: [Shell, string][] =
  process.platform === "win32"
    ? [
        ["powershell", "PowerShell"],
        ["cmd", "cmd"],
      ]
    : [["bash", "bash or zsh"]];

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
        "https-port": { type: "string" },
        "mqtt-port": { type: "string" },
        "amqp-port": { type: "string" },
        partitions: { type: "string", default: "2" },
        "retention-hours": { type: "string", default: "24" },
        oauth: { type: "string" },
        "portal-port": { type: "string" },
        "no-portal": { type: "boolean", default: false },
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
  if (values.oauth !== undefined && values.oauth !== "basic") {
    console.error(`Error: --oauth takes 'basic' (the only mode), not '${values.oauth}'. ${USAGE}`);
    process.exit(2);
  }
  // Event Hubs' own bounds: 1 to 32 partitions, retention from an hour to 7 days.
  const partitions = wholeNumber(values.partitions, "--partitions", 1, 32);
  const retentionHours = wholeNumber(values["retention-hours"], "--retention-hours", 1, 168);
  const hub = await startHub({
    dataDir: values.data,
    inMemory: values["in-memory"],
    httpsPort: portOption(values["https-port"], "--https-port"),
    mqttPort: portOption(values["mqtt-port"], "--mqtt-port"),
    amqpPort: portOption(values["amqp-port"], "--amqp-port"),
    eventLog: { partitions, retentionMs: retentionHours * 3600_000 },
    oauth: values.oauth === "basic" ? "basic" : undefined,
    portal: values["no-portal"] ? undefined : { port: portOption(values["portal-port"], "--portal-port") },
    log: quiet ? undefined : (line) => console.log(`[hub] ${line}`),
  });

  console.log(`Local IoT hub listening on ${hub.listening.join(", ")}`);
  console.log(`State: ${values["in-memory"] ? "in memory (lost on exit)" : `${hub.dataDir}/state`}`);
  console.log(`Connection string (iothubowner) and CA path written to ${hub.envPath}:`);
  console.log(`  IOTHUB_CONNECTION_STRING="${maskKey(hub.connectionString)}"   (full key in ${hub.envPath})`);
  console.log(
    `  EVENTHUB_CONNECTION_STRING="${maskKey(hub.eventHubConnectionString())}"   (telemetry: ` +
      `${partitions} partitions, kept ${retentionHours} h)`,
  );
  console.log(
    `  PROVISIONING_CONNECTION_STRING="${maskKey(hub.provisioning.connectionString)}"   (Device Provisioning: ` +
      `PROVISIONING_HOST=localhost, PROVISIONING_ID_SCOPE=${hub.provisioning.idScope})`,
  );
  if (Object.keys(hub.redirects).length) {
    const moved = Object.entries(hub.redirects).map(([from, to]) => `${from} on ${to}`);
    console.log(`Serving ${moved.join(" and ")}: clients reach it as usual through ${REDIRECT_PATH}.`);
  }
  const https = hub.listening.find((url) => url.startsWith("https://"));
  if (https) console.log(`Health: ${https}/health (no authentication, for scripts and container checks)`);
  if (hub.portal) console.log(`Portal (open it in your browser; the token in it is your key): ${hub.portal.url}`);
  if (values.oauth) {
    console.log(
      "Microsoft Entra ID bearer tokens accepted (--oauth basic: audience and expiry checked, not the signature)",
    );
  }
  console.log("In each terminal where you run the tutorial scripts, first paste the lines for your shell:");
  const setup = { caPath: hub.caPath, envPath: hub.envPath, portMap: hub.redirects, redirectPath: REDIRECT_PATH };
  for (const [shell, label] of SHELLS) {
    console.log(`  ${label}:`);
    for (const line of clientSetupLines(shell, setup)) console.log(`    ${line}`);
  }
  // Signals are handled before "ready" is printed: a supervisor that stops the hub as soon as it reads "ready" gets
  // a clean shutdown, not the default kill.
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
  console.log("Local IoT hub ready. Press Ctrl-C to stop.");
}

/** A port flag's value: 0 (any free port) to 65535; anything else ends the CLI with the usage line. */
function portOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    console.error(`Error: ${flag} must be a port number from 0 to 65535, not '${value}'. ${USAGE}`);
    process.exit(2);
  }
  return port;
}

/** A whole number flag within bounds; anything else ends the CLI with the usage line. */
function wholeNumber(value: string, flag: string, min: number, max: number): number {
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min || number > max) {
    console.error(`Error: ${flag} must be a whole number from ${min} to ${max}, not '${value}'. ${USAGE}`);
    process.exit(2);
  }
  return number;
}

if (require.main === module) {
  main().catch((err) => {
    console.error(
      `Error: ${err instanceof PortError ? err.message : `the local hub failed to start: ${(err as Error).message}`}`,
    );
    process.exit(1);
  });
}
