/**
 * The lines `npm run hub` prints for a reader to paste into another terminal (bash, PowerShell or cmd): trust the
 * hub's CA, reach a hub on unprivileged ports through port-redirect.cjs, and copy the hub's env file to .env.
 */

import * as path from "node:path";

export type Shell = "bash" | "powershell" | "cmd";

/** The preload that sends localhost:443 (and the other standard ports) to the ports the hub bound instead. */
export const PORT_REDIRECT_PATH = path.join(__dirname, "port-redirect.cjs");

export interface ClientSetup {
  /** The hub's CA certificate, for NODE_EXTRA_CA_CERTS. */
  caPath: string;
  /** The env file the hub wrote (IOTHUB_CONNECTION_STRING), to copy to .env. */
  envPath: string;
  /** Standard port → the port the hub bound instead; empty or absent when it bound the standard ones. */
  portMap?: Record<number, number>;
  /** Absolute path of port-redirect.cjs. */
  redirectPath: string;
}

/** LOCALHUB_PORT_MAP's value: `443=40123,8883=40124`. */
export function portMapValue(portMap: Record<number, number>): string {
  return Object.entries(portMap)
    .map(([from, to]) => `${from}=${to}`)
    .join(",");
}

/**
 * The NODE_OPTIONS entry that loads port-redirect.cjs. Node splits NODE_OPTIONS at spaces outside double quotes, and
 * inside them reads a backslash as an escape: so the path is quoted, and its backslashes (Windows) and quotes doubled.
 */
export function requireOption(redirectPath: string): string {
  return `--require "${redirectPath.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * The environment variables a child process (a tutorial script the demo or a test starts) needs to reach a hub on
 * other ports as localhost:443/8883: none when nothing is mapped. `nodeOptions` is what NODE_OPTIONS held before.
 */
export function redirectEnv(
  portMap: Record<number, number>,
  nodeOptions: string | undefined = process.env.NODE_OPTIONS,
): { NODE_OPTIONS?: string; LOCALHUB_PORT_MAP?: string } {
  const map = portMapValue(portMap);
  if (!map) return {};
  const option = requireOption(PORT_REDIRECT_PATH);
  return { NODE_OPTIONS: nodeOptions ? `${nodeOptions} ${option}` : option, LOCALHUB_PORT_MAP: map };
}

/** bash: single quotes keep everything literal; a single quote itself ends, escapes and reopens. */
function bashQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** PowerShell: single-quoted strings are literal; it also reads the typographic single quotes as quotes. */
function powershellQuote(text: string): string {
  return `'${text.replace(/['\u2018\u2019\u201a\u201b]/g, (c) => c + c)}'`;
}

/**
 * The lines, in order: NODE_EXTRA_CA_CERTS; when ports are mapped, NODE_OPTIONS (added to what is there, except in
 * cmd, which has no safe way to test a variable on one pasted line: there it is replaced) and LOCALHUB_PORT_MAP; then
 * the copy of the env file to .env. cmd cannot escape `%` in a pasted line: a path containing `%` is not supported.
 */
export function clientSetupLines(shell: Shell, setup: ClientSetup): string[] {
  const { caPath, envPath, redirectPath } = setup;
  const map = portMapValue(setup.portMap ?? {});
  const nodeOption = requireOption(redirectPath);
  switch (shell) {
    case "bash":
      return [
        `export NODE_EXTRA_CA_CERTS=${bashQuote(caPath)}`,
        ...(map
          ? [
              `export NODE_OPTIONS="\${NODE_OPTIONS:+$NODE_OPTIONS }"${bashQuote(nodeOption)}`,
              `export LOCALHUB_PORT_MAP=${map}`,
            ]
          : []),
        `cp ${bashQuote(envPath)} .env`,
      ];
    case "powershell":
      return [
        `$env:NODE_EXTRA_CA_CERTS = ${powershellQuote(caPath)}`,
        ...(map
          ? [
              `$env:NODE_OPTIONS = ("$env:NODE_OPTIONS " + ${powershellQuote(nodeOption)}).Trim()`,
              `$env:LOCALHUB_PORT_MAP = '${map}'`,
            ]
          : []),
        `Copy-Item -LiteralPath ${powershellQuote(envPath)} -Destination .env`,
      ];
    case "cmd":
      // `set "NAME=value"` keeps spaces and & literal; NODE_OPTIONS already carries its own quotes around the path.
      return [
        `set "NODE_EXTRA_CA_CERTS=${caPath}"`,
        ...(map ? [`set NODE_OPTIONS=${nodeOption}`, `set LOCALHUB_PORT_MAP=${map}`] : []),
        `copy /Y "${envPath}" .env`,
      ];
  }
}
