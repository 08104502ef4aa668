/**
 * The local portal in a real browser (Debian's headless Chromium, driven by puppeteer-core): the tutorial's portal
 * step offline. It creates a device and a module, copies the module connection string with the copy button, starts
 * the tutorial's receiver with it, edits a desired property and sees the receiver print it; then a screenshot goes
 * to test/.artifacts/. Without Chromium it says so in one line and is skipped (CI installs it: .ci/run).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import puppeteer from "puppeteer-core";
import type { Hub } from "../localhub";
import { clientEnv, moduleConnectionString, startTestHub, tempDir, twinOf } from "../helpers/hub";
import { ROOT } from "../helpers/paths";
import { startScript } from "../helpers/scripts";

const CHROMIUM = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser"].find(
  (file): file is string => !!file && fs.existsSync(file),
);
if (!CHROMIUM) process.stderr.write("SKIPPED: the portal's browser test: no Chromium (apt-get install chromium)\n");
const ARTIFACTS = path.join(ROOT, "test", ".artifacts");
const DEVICE = "browserDevice";
const MODULE = "browserModule";

/** The page's text in an element, as an expression evaluated in the browser (this file has no DOM types). */
const text = (id: string) => `document.getElementById(${JSON.stringify(id)}).textContent`;

let hub: Hub;

beforeAll(async () => {
  hub = await startTestHub(tempDir(), { portal: { port: 0 } });
});
afterAll(() => hub.stop());

/** The tutorial's receiver, as `node --require tsx/cjs`, in a process group of its own (stopped in the test's finally). */
const startReceiver = (moduleConnection: string) =>
  startScript("ReceiveModuleTwinDesiredPropertiesPatch.ts", {
    ...clientEnv(hub),
    MODULE_CONNECTION_STRING: moduleConnection,
  });

(CHROMIUM ? it : it.skip)(
  "a reader creates a module in the portal, copies its connection string, and the receiver gets the desired edit",
  async () => {
    // Chromium runs in a process group of its own; close() ends it, pass or fail.
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${tempDir("chromium-")}`,
      ],
    });
    try {
      const origin = `http://127.0.0.1:${hub.portal!.port}`;
      await browser
        .defaultBrowserContext()
        .overridePermissions(origin, ["clipboard-read", "clipboard-write", "clipboard-sanitized-write"]);
      const page = await browser.newPage();
      await page.setViewport({ width: 1280, height: 900 });
      await page.goto(hub.portal!.url);
      expect(page.url()).toBe(`${origin}/`); // the token went into a cookie and out of the address bar

      await page.type("#new-device-id", DEVICE);
      await page.click("#create-device");
      // The live list can show the new device before the page has selected it and opened its details.
      await page.waitForSelector(`[data-key="${DEVICE}"].selected`);
      await page.waitForSelector("#create-module", { visible: true });
      await page.type("#new-module-id", MODULE);
      await page.click("#create-module");
      await page.waitForSelector(`[data-key="${DEVICE}/${MODULE}"].selected`);
      await page.waitForFunction(`${text("cs-primary")}.includes("ModuleId=")`);

      await page.click("#copy-primary");
      await page.waitForFunction(`${text("copy-status")}.startsWith("Copied")`);
      const copied = (await page.evaluate("navigator.clipboard.readText()")) as string;
      expect(copied).toBe(moduleConnectionString(hub, DEVICE, MODULE));

      const receiver = startReceiver(copied);
      try {
        await receiver.waitForOutput(/Waiting for desired property patches/, 20_000);
        // The live view shows the module connected.
        await page.waitForSelector(`[data-key="${DEVICE}/${MODULE}"] .dot.on`);

        await page.waitForFunction(`${text("twin-json")}.includes('"etag"')`);
        await page.click("#twin-editor", { clickCount: 3 });
        await page.keyboard.down("Control");
        await page.keyboard.press("KeyA");
        await page.keyboard.up("Control");
        await page.keyboard.type('{"tags": {"room": "lab"}, "desired": {"telemetryInterval": 122}}');
        await page.click("#save-twin");
        // The portal's answer, whatever it is: a failure then names it ("Not valid JSON.", the hub's error).
        await page.waitForFunction(`${text("twin-status")} !== ""`);
        expect(await page.evaluate(text("twin-status"))).toMatch(/^Saved: desired \$version \d+\.$/);

        await receiver.waitForOutput(/"telemetryInterval": 122/, 20_000);
        expect(twinOf(hub, DEVICE, MODULE).tags).toEqual({ room: "lab" });
        // The receiver reports the value back, and the portal's twin view shows it without a reload.
        await page.waitForFunction(`JSON.parse(${text("twin-json")}).properties.reported.telemetryInterval === 122`);
        fs.mkdirSync(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: path.join(ARTIFACTS, "portal.png") });
      } finally {
        await receiver.stop();
      }
    } finally {
      await browser.close();
    }
  },
  90_000,
);
