// @ts-check
/**
 * Sends TCP connections for localhost on chosen ports to other ports, so that clients which insist on localhost:443
 * (the service SDK) reach a local hub that could only bind an unprivileged port. Plain CommonJS for `node --require`.
 *
 * Use: NODE_OPTIONS='--require "/abs/path/port-redirect.cjs"' LOCALHUB_PORT_MAP=443=40123,8883=40124 node app.js
 * LOCALHUB_PORT_MAP is a comma-separated list of `port=newPort` pairs. Only connections to localhost, 127.0.0.1 and
 * ::1 on a listed port change, and only their port: the host name, and so the TLS server name and certificate check,
 * stay as the client wrote them. In-process (tests): `require("./port-redirect.cjs").setPortMap({ 443: 40123 })`.
 */
"use strict";
const net = require("node:net");

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "::1", "[::1]"]);
/** Marks our patch on net.Socket.prototype.connect, so that loading this file twice (jest) patches once. */
const STATE = Symbol.for("localhub.port-redirect");
const EXAMPLE = "443=40123,8883=40124";

/** @typedef {{ map: Map<number, number> }} State */
/** @typedef {(this: net.Socket, ...args: unknown[]) => net.Socket} Connect */

/** @param {unknown} value @returns {number | undefined} the TCP port it names, if it names one */
function toPort(value) {
  const port = typeof value === "string" && /^\d+$/.test(value.trim()) ? Number(value) : value;
  return typeof port === "number" && Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
}

/**
 * @param {Iterable<[unknown, unknown]>} pairs
 * @returns {Map<number, number>}
 */
function toPortMap(pairs) {
  /** @type {Map<number, number>} */
  const map = new Map();
  for (const [from, to] of pairs) {
    const fromPort = toPort(from);
    const toPortNumber = toPort(to);
    if (fromPort === undefined || toPortNumber === undefined)
      throw new Error(`"${String(from)}=${String(to)}" is not a pair of ports (1-65535)`);
    if (map.has(fromPort)) throw new Error(`port ${fromPort} is listed twice`);
    map.set(fromPort, toPortNumber);
  }
  return map;
}

/** @param {string} text e.g. "443=40123,8883=40124" @returns {Map<number, number>} */
function parsePortMap(text) {
  const entries = text.split(",").filter((entry) => entry.trim() !== "");
  return toPortMap(
    entries.map((entry) => {
      const parts = entry.split("=");
      if (parts.length !== 2) throw new Error(`"${entry}" is not of the form port=newPort`);
      return /** @type {[string, string]} */ ([parts[0], parts[1]]);
    }),
  );
}

/**
 * Socket#connect arguments, with the port replaced when they name a loopback host on a mapped port.
 * Socket#connect is called three ways: with net.connect's normalized `[options, callback]` array, with
 * `(options, callback)` (tls.connect), and with `(port, host?, callback?)`.
 * @param {Map<number, number>} map
 * @param {unknown[]} args
 * @returns {unknown[]}
 */
function redirect(map, args) {
  if (map.size === 0) return args;
  const [first] = args;
  /** @type {unknown} */
  let options;
  /** @type {unknown[]} */
  let rest;
  if (Array.isArray(first)) {
    options = first[0];
    rest = first.slice(1);
  } else if (typeof first === "object" && first !== null) [options, ...rest] = args;
  else {
    const host = typeof args[1] === "string" ? args[1] : undefined;
    options = { port: first, host };
    rest = args.slice(host === undefined ? 1 : 2);
  }
  if (typeof options !== "object" || options === null) return args;
  const {
    port,
    host = "localhost",
    path,
  } = /** @type {{ port?: unknown, host?: unknown, path?: unknown }} */ (options);
  if (path !== undefined && path !== null) return args; // an IPC connection (Unix socket, Windows pipe)
  if (typeof host !== "string" || !LOOPBACK_HOSTS.has(host.toLowerCase())) return args;
  const fromPort = toPort(port);
  const toPortNumber = fromPort === undefined ? undefined : map.get(fromPort);
  if (toPortNumber === undefined) return args;
  // A copy: tls.connect keeps the caller's options object to check the server's certificate against its host.
  return [{ ...options, port: toPortNumber }, ...rest];
}

/** Patches net.Socket.prototype.connect once per process; returns the state every copy of this file shares. */
function install() {
  const proto = /** @type {{ connect: Connect & { [STATE]?: State } }} */ (
    /** @type {unknown} */ (net.Socket.prototype)
  );
  const installed = proto.connect[STATE];
  if (installed) return installed;
  /** @type {State} */
  const state = { map: new Map() };
  const original = proto.connect;
  /** @type {Connect & { [STATE]?: State }} */
  const connect = function (...args) {
    return original.apply(this, redirect(state.map, args));
  };
  connect[STATE] = state;
  proto.connect = connect;
  const text = process.env.LOCALHUB_PORT_MAP;
  if (text !== undefined && text.trim() !== "") {
    try {
      state.map = parsePortMap(text);
    } catch (err) {
      process.stderr.write(
        `port-redirect: ignoring LOCALHUB_PORT_MAP="${text}": ${/** @type {Error} */ (err).message}; ` +
          `expected port=newPort pairs separated by commas, e.g. ${EXAMPLE}. Nothing is redirected.\n`,
      );
    }
  }
  return state;
}

const state = install();

/**
 * Replaces the map for this process: `setPortMap({ 443: hub.ports.https, 8883: hub.ports.mqtt })`; `setPortMap({})`
 * stops redirecting. Throws on anything that is not a port.
 * @param {Record<number, number>} map
 */
function setPortMap(map) {
  state.map = toPortMap(Object.entries(map));
}

module.exports = { setPortMap };
