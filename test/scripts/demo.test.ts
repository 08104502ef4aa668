/** `npm run demo`, the README's first command: the whole tutorial offline, or one clear line when it cannot run. */
import * as path from "node:path";
import { spawn } from "node:child_process";
import { NODE_WITH_TSX, ROOT } from "../helpers/paths";
import { startTestHub } from "../helpers/hub";

function runDemo(): Promise<{ code: number | null; output: string }> {
  const [node, ...nodeArgs] = NODE_WITH_TSX;
  const child = spawn(node, [...nodeArgs, path.join(ROOT, "test/demo.ts")], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, output })));
}

it("plays every step of the tutorial and ends with the patch received", async () => {
  const { code, output } = await runDemo();
  expect(code).toBe(0);
  const steps = output.split("\n").filter((line) => line.startsWith("== Step"));
  expect(steps).toHaveLength(5);
  expect(output).toMatch(
    /receiver \| Twin desired properties patch received:\n\s+receiver \| \{\n\s+receiver \|\s+"telemetryInterval": 122,/,
  );
  expect(output).toMatch(/Done: the whole tutorial ran offline in [\d.]+ s\./);
}, 60_000);

it("says which port is taken when a hub already runs, and exits 1", async () => {
  const hub = await startTestHub();
  try {
    const { code, output } = await runDemo();
    expect(code).toBe(1);
    expect(output).toMatch(/^Error: Cannot listen on port 443: it is already in use .*$/m);
    expect(output).not.toMatch(/\n\s+at /);
  } finally {
    await hub.stop();
  }
}, 60_000);
