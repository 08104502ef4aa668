// The local portal's page: plain browser APIs, no build step. Everything it shows comes from /api/ and the live
// stream /api/events (server-sent events); it never builds HTML from hub data (textContent only).
"use strict";

const $ = (id) => document.getElementById(id);
let selected = null; // { deviceId, moduleId }
let source = null;
let twin = null;
let editing = null; // the etag the editor's text was taken from, while the user edits
let telemetry = [];
const TELEMETRY_SHOWN = 50;

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

async function api(method, path, body) {
  const res = await fetch(`/api/${path}`, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(answer.error || `${res.status} ${res.statusText}`);
  return answer;
}

function query(target) {
  const params = new URLSearchParams({ device: target.deviceId });
  if (target.moduleId) params.set("module", target.moduleId);
  return params.toString();
}

function show(id, text, isError = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", isError);
}

// ---- live stream ----

function connect() {
  if (source) source.close();
  source = new EventSource(`/api/events${selected ? `?${query(selected)}` : ""}`);
  source.onopen = () => show("live-state", "live");
  source.onerror = () => show("live-state", "reconnecting…");
  source.addEventListener("identities", (e) => renderIdentities(JSON.parse(e.data)));
  source.addEventListener("twin", (e) => renderTwin(JSON.parse(e.data)));
  source.addEventListener("faults", (e) => renderFaults(JSON.parse(e.data).faults));
  source.addEventListener("telemetry-history", (e) => {
    telemetry = JSON.parse(e.data);
    renderTelemetry();
  });
  source.addEventListener("telemetry", (e) => {
    telemetry.unshift(JSON.parse(e.data));
    telemetry.length = Math.min(telemetry.length, TELEMETRY_SHOWN);
    renderTelemetry();
  });
  source.addEventListener("cloud-to-device", (e) => {
    const outcome = JSON.parse(e.data);
    const item = document.querySelector(`[data-message-id="${CSS.escape(outcome.messageId || "")}"]`);
    if (item) item.lastChild.textContent = ` → ${outcome.status}`;
  });
}

// ---- identities ----

function renderIdentities({ devices, total }) {
  const list = $("device-list");
  list.replaceChildren();
  let shown = 0;
  for (const device of devices) {
    shown += 1 + device.modules.length;
    const modules = el("ul");
    for (const module of device.modules) {
      modules.append(el("li", {}, identityLabel(device.deviceId, module.moduleId, module.connectionState)));
    }
    const label = identityLabel(device.deviceId, undefined, device.connectionState);
    if (device.status === "disabled") label.append(el("span", { className: "disabled", textContent: " disabled" }));
    list.append(el("li", {}, label, modules));
  }
  show("identities-status", total > shown ? `showing ${shown} of ${total} identities` : `${total} identities`);
  if (selected && !devices.some((d) => d.deviceId === selected.deviceId)) select(null);
}

function identityLabel(deviceId, moduleId, state) {
  const key = moduleId ? `${deviceId}/${moduleId}` : deviceId;
  const label = el(
    "span",
    { className: selected && keyOf(selected) === key ? "selected" : "", title: state },
    el("span", { className: state === "Connected" ? "dot on" : "dot" }),
    moduleId ?? deviceId,
  );
  label.dataset.key = key;
  label.onclick = () => select({ deviceId, moduleId });
  return label;
}

const keyOf = (target) => (target.moduleId ? `${target.deviceId}/${target.moduleId}` : target.deviceId);

async function select(target) {
  selected = target;
  twin = null;
  editing = null;
  telemetry = [];
  $("selected").hidden = !target;
  $("nothing-selected").hidden = !!target;
  document.querySelectorAll("#device-list [data-key]").forEach((node) => {
    node.classList.toggle("selected", !!target && node.dataset.key === keyOf(target));
  });
  connect();
  if (!target) return;
  $("selected-title").textContent = target.moduleId ? `Module ${keyOf(target)}` : `Device ${target.deviceId}`;
  $("module-form-box").hidden = !!target.moduleId;
  $("device-only").hidden = !!target.moduleId;
  for (const id of ["copy-status", "twin-status", "method-answer", "fault-status"]) show(id, "");
  $("c2d-outcomes").replaceChildren();
  renderTelemetry();
  try {
    const strings = await api("GET", `connection-strings?${query(target)}`);
    $("cs-primary").textContent = strings.primary ?? `(${strings.authentication} authentication: no key)`;
    $("cs-secondary").textContent = strings.secondary ?? "";
  } catch (err) {
    show("copy-status", err.message, true);
  }
}

$("device-form").onsubmit = async (event) => {
  event.preventDefault();
  const deviceId = $("new-device-id").value.trim();
  try {
    await api("POST", "devices", { deviceId });
    $("new-device-id").value = "";
    await select({ deviceId });
  } catch (err) {
    show("identities-status", err.message, true);
  }
};

$("module-form").onsubmit = async (event) => {
  event.preventDefault();
  const moduleId = $("new-module-id").value.trim();
  const deviceId = selected.deviceId;
  try {
    await api("POST", `devices/${encodeURIComponent(deviceId)}/modules`, { moduleId });
    $("new-module-id").value = "";
    await select({ deviceId, moduleId });
  } catch (err) {
    show("identities-status", err.message, true);
  }
};

$("delete-selected").onclick = async () => {
  const target = selected;
  if (!target || !confirm(`Delete ${keyOf(target)}?`)) return;
  const path = `devices/${encodeURIComponent(target.deviceId)}${target.moduleId ? `/modules/${encodeURIComponent(target.moduleId)}` : ""}`;
  try {
    await api("DELETE", path);
    await select(null);
  } catch (err) {
    show("identities-status", err.message, true);
  }
};

// ---- connection strings ----

async function copy(id) {
  const text = $(id).textContent;
  try {
    await navigator.clipboard.writeText(text);
    show("copy-status", "Copied to the clipboard.");
  } catch {
    // No clipboard permission: select the text so that Ctrl-C copies it.
    getSelection().selectAllChildren($(id));
    show("copy-status", "Selected: press Ctrl-C (or ⌘-C) to copy.");
  }
}
$("copy-primary").onclick = () => copy("cs-primary");
$("copy-secondary").onclick = () => copy("cs-secondary");

// ---- twin ----

function editable(twin) {
  const { $metadata, $version, ...desired } = twin.properties.desired;
  return { tags: twin.tags ?? {}, desired };
}

function renderTwin(next) {
  if (!next) return;
  twin = next;
  $("twin-json").textContent = JSON.stringify(twin, null, 2);
  $("selected-state").textContent = twin.connectionState;
  $("selected-state").classList.toggle("on", twin.connectionState === "Connected");
  if (editing === null) {
    $("twin-editor").value = JSON.stringify(editable(twin), null, 2);
  } else if (editing !== twin.etag) {
    show("twin-status", "The twin changed since you began editing: Save will be refused. Reload to start again.", true);
  }
}

$("twin-editor").oninput = () => {
  if (editing === null && twin) editing = twin.etag;
};
$("reload-twin").onclick = () => {
  editing = null;
  show("twin-status", "");
  if (twin) renderTwin(twin);
};
$("save-twin").onclick = async () => {
  if (!twin) return;
  let edited;
  try {
    edited = JSON.parse($("twin-editor").value);
  } catch {
    return show("twin-status", "Not valid JSON.", true);
  }
  try {
    const saved = await api("PUT", `twin?${query(selected)}`, { ...edited, etag: editing ?? twin.etag });
    editing = null;
    renderTwin(saved);
    show("twin-status", `Saved: desired $version ${saved.properties.desired.$version}.`);
  } catch (err) {
    show("twin-status", err.message, true);
  }
};

// ---- telemetry, C2D, methods ----

function renderTelemetry() {
  $("telemetry").replaceChildren(
    ...telemetry.map((m) =>
      el(
        "li",
        {},
        el("strong", { textContent: `${m.enqueuedTime} ` }),
        m.moduleId ? `[${m.moduleId}] ` : "",
        el("code", { textContent: m.body + (m.truncated ? "…" : "") }),
        el("div", { className: "muted", textContent: JSON.stringify(m.properties) }),
      ),
    ),
  );
}

function parseJsonInput(id, fallback) {
  const text = $(id).value.trim();
  return text ? JSON.parse(text) : fallback;
}

$("send-c2d").onclick = async () => {
  try {
    const properties = parseJsonInput("c2d-properties", {});
    const sent = await api("POST", "cloud-to-device", {
      deviceId: selected.deviceId,
      body: $("c2d-body").value,
      properties,
    });
    const item = el(
      "li",
      {},
      `${new Date().toISOString()} ${sent.messageId}`,
      el("span", { textContent: " → Enqueued" }),
    );
    item.dataset.messageId = sent.messageId;
    $("c2d-outcomes").prepend(item);
  } catch (err) {
    $("c2d-outcomes").prepend(el("li", { className: "error", textContent: err.message }));
  }
};

$("invoke-method").onclick = async () => {
  show("method-answer", "calling…");
  try {
    const answer = await api("POST", "methods", {
      deviceId: selected.deviceId,
      moduleId: selected.moduleId,
      methodName: $("method-name").value.trim(),
      payload: parseJsonInput("method-payload", null),
      responseTimeoutInSeconds: Number($("method-timeout").value),
    });
    show("method-answer", JSON.stringify(answer, null, 2));
  } catch (err) {
    show("method-answer", err.message, true);
  }
};

// ---- faults ----

function renderFaults(faults) {
  const mine = selected && faults.find((f) => f.identity === keyOf(selected));
  if (!mine) return show("fault-status", faults.length ? `${faults.length} identities have faults` : "No faults.");
  const parts = [];
  if (mine.refuseReconnectsSecondsLeft !== undefined)
    parts.push(`reconnects refused, ${mine.refuseReconnectsSecondsLeft} s left`);
  if (mine.latencyMilliseconds !== undefined) parts.push(`${mine.latencyMilliseconds} ms latency`);
  if (mine.ignorePingsSecondsLeft !== undefined) parts.push("pings unanswered");
  show("fault-status", `Faults: ${parts.join(", ")}`);
}

async function fault(action, extra = {}) {
  try {
    await api("POST", "faults", { deviceId: selected.deviceId, moduleId: selected.moduleId, action, ...extra });
    if (action === "drop") show("fault-status", "Connection dropped.");
  } catch (err) {
    show("fault-status", err.message, true);
  }
}
$("fault-drop").onclick = () => fault("drop");
$("fault-refuse").onclick = () => fault("refuse-reconnects", { seconds: Number($("fault-seconds").value) });
$("fault-latency").onclick = () => fault("latency", { milliseconds: Number($("fault-ms").value) });
$("fault-pings").onclick = () => fault("ignore-pings");
$("fault-clear").onclick = async () => {
  try {
    await api("DELETE", `faults?${query(selected)}`);
  } catch (err) {
    show("fault-status", err.message, true);
  }
};

connect();
