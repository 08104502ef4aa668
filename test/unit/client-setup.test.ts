/**
 * The lines the hub prints for other terminals. bash and Node's reading of NODE_OPTIONS are run for real here;
 * PowerShell and cmd are not available on this machine, so their lines are checked against what was written by hand.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { clientSetupLines, requireOption } from "../localhub/client-setup";
import { tempDir } from "../helpers/hub";
import { TEST_TLS_DIR } from "../helpers/paths";

/** A directory whose name has what breaks careless quoting: spaces, a single and a double quote, a backslash, $ and &. */
function awkwardDir(): string {
  const dir = path.join(tempDir("client-setup-"), `Ada's "hub" \\ $HOME & more`);
  fs.mkdirSync(dir);
  return dir;
}

/** A preload that says it was loaded: stands in for port-redirect.cjs, whose own tests show what it does. */
function preload(dir: string, name: string): string {
  const file = path.join(dir, `${name}.cjs`);
  fs.writeFileSync(file, `process.stdout.write(${JSON.stringify(`${name} loaded\n`)});\n`);
  return file;
}

/** Runs the bash lines in a fresh bash in `cwd`, then node, which prints the variables the lines set. */
function runInBash(lines: string[], cwd: string, env: NodeJS.ProcessEnv = {}) {
  const script = [
    ...lines,
    `"${process.execPath}" -e 'for (const k of ["NODE_EXTRA_CA_CERTS", "LOCALHUB_PORT_MAP"]) console.log(k + "=" + process.env[k])'`,
  ].join("\n");
  const result = spawnSync("bash", ["--noprofile", "--norc", "-e", "-c", script], {
    cwd,
    env: { PATH: process.env.PATH, HOME: "/nonexistent", ...env },
    encoding: "utf8",
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("bash", () => {
  test("the lines set the CA, load the redirect from an awkward path after an existing NODE_OPTIONS, and copy .env", () => {
    const dir = awkwardDir();
    const caPath = path.join(dir, "ca.pem");
    fs.copyFileSync(path.join(TEST_TLS_DIR, "ca.pem"), caPath);
    const envPath = path.join(dir, "env");
    fs.writeFileSync(envPath, 'IOTHUB_CONNECTION_STRING="HostName=localhost;..."\n');
    const redirectPath = preload(dir, "redirect");
    const earlier = preload(dir, "earlier");
    const cwd = tempDir("reader-");
    const lines = clientSetupLines("bash", { caPath, envPath, redirectPath, portMap: { 443: 40123, 8883: 40124 } });
    const result = runInBash(lines, cwd, { NODE_OPTIONS: requireOption(earlier) });
    expect(result).toEqual({
      code: 0,
      stdout: `earlier loaded\nredirect loaded\nNODE_EXTRA_CA_CERTS=${caPath}\nLOCALHUB_PORT_MAP=443=40123,8883=40124\n`,
      stderr: "",
    });
    expect(fs.readFileSync(path.join(cwd, ".env"), "utf8")).toBe(fs.readFileSync(envPath, "utf8"));
  });

  test("without a port map, the lines set only the CA and copy .env", () => {
    const lines = clientSetupLines("bash", {
      caPath: "/home/ada/iot tutorial/.localhub/ca.pem",
      envPath: "/home/ada/iot tutorial/.localhub/env",
      redirectPath: "/home/ada/iot tutorial/test/localhub/port-redirect.cjs",
    });
    expect(lines).toEqual([
      "export NODE_EXTRA_CA_CERTS='/home/ada/iot tutorial/.localhub/ca.pem'",
      "cp '/home/ada/iot tutorial/.localhub/env' .env",
    ]);
  });

  test("with no NODE_OPTIONS set before, NODE_OPTIONS holds only the --require", () => {
    const dir = awkwardDir();
    const redirectPath = preload(dir, "redirect");
    fs.writeFileSync(path.join(dir, "env"), "");
    const lines = clientSetupLines("bash", {
      caPath: "/ca.pem",
      envPath: path.join(dir, "env"),
      redirectPath,
      portMap: { 443: 1 },
    });
    const result = runInBash([...lines, 'printf "%s\\n" "$NODE_OPTIONS"'], tempDir("reader-"));
    expect(result.stdout.split("\n")[0]).toBe(requireOption(redirectPath));
  });
});

describe("NODE_OPTIONS as Node reads it", () => {
  test("a --require path with spaces, quotes and backslashes loads the right file", () => {
    const dir = path.join(tempDir("client-setup-"), 'C:\\Users\\Ada "L" Lovelace\\tutorial');
    fs.mkdirSync(dir);
    const redirectPath = preload(dir, "redirect");
    const result = spawnSync(process.execPath, ["-e", ""], {
      env: { PATH: process.env.PATH, NODE_OPTIONS: requireOption(redirectPath) },
      encoding: "utf8",
    });
    expect({ code: result.status, stdout: result.stdout, stderr: result.stderr }).toEqual({
      code: 0,
      stdout: "redirect loaded\n",
      stderr: "",
    });
  });
});

describe("Windows shells (lines checked, not run)", () => {
  const setup = {
    caPath: "C:\\Users\\Ada Lovelace\\iot tutorial\\.localhub\\ca.pem",
    envPath: "C:\\Users\\Ada Lovelace\\iot tutorial\\.localhub\\env",
    redirectPath: "C:\\Users\\Ada Lovelace\\iot tutorial\\test\\localhub\\port-redirect.cjs",
    portMap: { 443: 40123, 8883: 40124 },
  };

  test("PowerShell: literal strings, NODE_OPTIONS added to, Copy-Item", () => {
    expect(clientSetupLines("powershell", setup)).toEqual([
      "$env:NODE_EXTRA_CA_CERTS = 'C:\\Users\\Ada Lovelace\\iot tutorial\\.localhub\\ca.pem'",
      `$env:NODE_OPTIONS = ("$env:NODE_OPTIONS " + '--require "C:\\\\Users\\\\Ada Lovelace\\\\iot tutorial\\\\test\\\\localhub\\\\port-redirect.cjs"').Trim()`,
      "$env:LOCALHUB_PORT_MAP = '443=40123,8883=40124'",
      "Copy-Item -LiteralPath 'C:\\Users\\Ada Lovelace\\iot tutorial\\.localhub\\env' -Destination .env",
    ]);
  });

  test("PowerShell: a single quote in a path is doubled", () => {
    const lines = clientSetupLines("powershell", { ...setup, caPath: "C:\\Users\\O'Brien\\ca.pem", portMap: {} });
    expect(lines[0]).toBe("$env:NODE_EXTRA_CA_CERTS = 'C:\\Users\\O''Brien\\ca.pem'");
    expect(lines).toHaveLength(2);
  });

  test("cmd: set with quotes, NODE_OPTIONS with the quoted path, copy /Y", () => {
    expect(clientSetupLines("cmd", setup)).toEqual([
      'set "NODE_EXTRA_CA_CERTS=C:\\Users\\Ada Lovelace\\iot tutorial\\.localhub\\ca.pem"',
      'set NODE_OPTIONS=--require "C:\\\\Users\\\\Ada Lovelace\\\\iot tutorial\\\\test\\\\localhub\\\\port-redirect.cjs"',
      "set LOCALHUB_PORT_MAP=443=40123,8883=40124",
      'copy /Y "C:\\Users\\Ada Lovelace\\iot tutorial\\.localhub\\env" .env',
    ]);
  });
});
