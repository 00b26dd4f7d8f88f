// hookgate's console: reads and acts through the admin API (/api/v1) with the session
// cookie set by POST /ui/login.
//
// Safety rule of this file: whatever came from a request (bodies, headers, topics, ids,
// errors) reaches the page only as text nodes (`h()` below appends strings as
// `document.createTextNode`), and into URLs only through `encodeURIComponent`. Nothing is
// ever handed to an HTML parser (no HTML strings, no markup-setting properties).

const REFRESH_MS = 2000;
const main = document.getElementById("main");
const notice = document.getElementById("notice");
const state = { session: null, timer: null, route: "" };

// ---------------------------------------------------------------------------------------
// DOM helpers

/** An element with attributes (`on…` take functions) and children (strings become text). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs || {})) el.setAttribute(key, String(value));
  append(el, children);
  return el;
}

function badge(status) {
  const known = ["delivered", "pending", "dead", "unrouted", "failed", "paused", "active"];
  return h("span", { class: "badge " + (known.includes(status) ? status : "") }, status);
}

function time(text) {
  return text ? text.replace("T", " ").replace("Z", "") : "";
}

function showNotice(message) {
  notice.textContent = message;
  notice.hidden = !message;
}

function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// ---------------------------------------------------------------------------------------
// The API

class SessionEnded extends Error {}

async function api(path, options = {}) {
  const method = options.method || "GET";
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-Hookgate-CSRF"] = state.session ? state.session.csrf : "";
  }
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const data = await response.json().catch(() => null);
  if (response.status === 401 && path.startsWith("/api/")) {
    state.session = null;
    showLogin("Your session ended; log in again.");
    throw new SessionEnded();
  }
  if (!response.ok) {
    const message = data && data.error ? data.error.message : response.statusText;
    throw new Error(message + " (" + response.status + ")");
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) q.set(key, value);
  const text = q.toString();
  return text ? "?" + text : "";
}

// ---------------------------------------------------------------------------------------
// Session

function showLogin(message) {
  stopTimer();
  document.getElementById("nav").hidden = true;
  document.getElementById("logout").hidden = true;
  document.getElementById("who").textContent = "";
  const error = h("p", { class: "error", id: "login-error" }, message || "");
  const input = h("input", {
    type: "password", name: "token", id: "token", autocomplete: "current-password",
    required: true, placeholder: "admin token",
  });
  const form = h("form", { id: "login" },
    h("label", { for: "token" }, "Admin token ([admin] token or read_token)"),
    input,
    h("button", { type: "submit", class: "primary" }, "Log in"),
    error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      state.session = await api("/ui/login", { method: "POST", body: { token: input.value } });
      input.value = "";
      showNotice("");
      start();
    } catch (e) {
      error.textContent = e.message;
    }
  });
  replace(main, h("div", { class: "login panel" }, h("h1", {}, "hookgate console"), form));
  input.focus();
}

async function logout() {
  await fetch("/ui/logout", { method: "POST", credentials: "same-origin" }).catch(() => null);
  state.session = null;
  showLogin("Logged out.");
}

function isOperator() {
  return state.session && state.session.role === "operator";
}

function start() {
  document.getElementById("nav").hidden = false;
  document.getElementById("logout").hidden = false;
  document.getElementById("who").textContent = state.session.role;
  render();
}

// ---------------------------------------------------------------------------------------
// Routing: #/events?…, #/events/<id>, #/refusals?…, #/destinations, #/sources

function stopTimer() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

/** Runs `refresh` every `ms` (default REFRESH_MS) while the page is visible. */
function every(refresh, ms = REFRESH_MS) {
  stopTimer();
  const run = () => {
    if (!document.hidden) refresh().catch(report);
  };
  state.timer = setInterval(run, ms);
}

function report(e) {
  if (e instanceof SessionEnded) return;
  showNotice(e.message);
}

function parseRoute() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, search] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "events", id: parts[1], params: new URLSearchParams(search || "") };
}

async function render() {
  if (!state.session) return;
  stopTimer();
  showNotice("");
  const route = parseRoute();
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("current", link.dataset.page === route.page);
  }
  const pages = { events: route.id ? eventPage : eventsPage, refusals: refusalsPage,
    destinations: destinationsPage, sources: sourcesPage };
  const page = pages[route.page] || eventsPage;
  try {
    await page(route);
  } catch (e) {
    report(e);
  }
}

// ---------------------------------------------------------------------------------------
// Events

async function eventsPage(route) {
  const p = route.params;
  const sources = (await api("/api/v1/sources")).items.map((s) => s.name);
  const field = (label, input) => h("label", {}, label, input);
  const select = (name, options) => {
    const el = h("select", { name, id: "filter-" + name },
      h("option", { value: "" }, "any"),
      options.map((o) => h("option", { value: o }, o)));
    el.value = p.get(name) || "";
    return el;
  };
  const text = (name, placeholder) =>
    h("input", { name, id: "filter-" + name, placeholder, value: p.get(name) || "" });
  const when = (name) => {
    const el = h("input", { name, id: "filter-" + name, type: "datetime-local", step: 1 });
    const iso = p.get(name);
    if (iso) el.value = localInput(new Date(iso));
    return el;
  };
  const form = h("form", { class: "filters", id: "event-filters" },
    field("Source", select("source", sources)),
    field("Topic (glob)", text("topic", "push, payment_intent.*")),
    field("Status", select("status", ["pending", "delivered", "dead", "unrouted"])),
    field("Provider id", text("provider_id", "the provider's event id")),
    field("Since", when("since")),
    field("Until", when("until")),
    h("button", { type: "submit", class: "primary" }, "Filter"),
    h("button", { type: "button", onclick: () => (location.hash = "#/events") }, "Clear"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const params = {};
    for (const [key, value] of data.entries()) {
      if (!value) continue;
      params[key] = key === "since" || key === "until" ? new Date(value).toISOString() : value;
    }
    location.hash = "#/events" + query(params);
  });

  const chart = h("div", { id: "arrivals" });
  const live = h("span", { class: "live" });
  const table = h("div", { id: "events" });
  replace(main,
    h("div", { class: "row" }, h("h1", {}, "Events"), live),
    h("div", { class: "panel" },
      h("div", { class: "row" }, h("h3", {}, "Events stored per second"),
        h("span", { class: "muted" }, "by this node, last 60 s")),
      chart),
    form,
    table);

  const filters = {};
  for (const key of ["source", "topic", "status", "tenant", "provider_id", "since", "until"]) {
    if (p.get(key)) filters[key] = p.get(key);
  }
  const cursor = p.get("cursor");
  const refresh = async () => {
    const [page, arrivals] = await Promise.all([
      api("/api/v1/events" + query({ ...filters, cursor, limit: 50 })),
      api("/api/v1/stats/arrivals?seconds=60"),
    ]);
    drawArrivals(chart, arrivals.items);
    replace(table, eventsTable(page, filters, p));
  };
  await refresh();
  if (cursor) {
    live.textContent = "paused on an older page";
    live.classList.add("off");
  } else {
    live.textContent = "● live";
    every(refresh);
  }
}

function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
    "T" + pad(date.getHours()) + ":" + pad(date.getMinutes()) + ":" + pad(date.getSeconds());
}

function eventsTable(page, filters, params) {
  const rows = page.items.map((e) => h("tr", { dataset: { id: e.id } },
    h("td", { class: "mono" }, h("a", { href: "#/events/" + encodeURIComponent(e.id) }, time(e.received_at))),
    h("td", {}, e.source),
    h("td", { class: "wrap" }, e.topic || ""),
    h("td", { class: "wrap" }, e.tenant || ""),
    h("td", { class: "wrap mono" }, e.provider_id || ""),
    h("td", {}, badge(e.status)),
    h("td", { class: "num" }, e.size)));
  const older = page.next_cursor
    ? h("a", { href: "#/events" + query({ ...filters, cursor: page.next_cursor }), id: "older" }, "Older →")
    : h("span", { class: "muted" }, "no older events");
  return [
    h("table", { id: "events-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Received (UTC)"), h("th", {}, "Source"),
        h("th", {}, "Topic"), h("th", {}, "Tenant"), h("th", {}, "Provider id"),
        h("th", {}, "Status"), h("th", { class: "num" }, "Bytes"))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No events match.")))),
    h("div", { class: "pager" },
      params.get("cursor") ? h("a", { href: "#/events" + query(filters) }, "← Newest") : null,
      older),
  ];
}

function drawArrivals(container, items) {
  const width = 600, height = 80;
  const max = Math.max(1, ...items.map((i) => i.count));
  const step = width / items.length;
  const bars = items.map((item, index) => {
    const barHeight = ((height - 2) * item.count) / max;
    return svg("rect", { x: index * step + 1, y: height - barHeight,
      width: Math.max(1, step - 2), height: barHeight },
      svg("title", {}, time(item.at) + ": " + item.count + " events"));
  });
  const total = items.reduce((sum, i) => sum + i.count, 0);
  // Labels are HTML beside the drawing: the drawing stretches to the page's width.
  replace(container,
    h("div", { class: "row muted" }, h("span", {}, "max " + max + "/s"), h("span", {}, total + " in 60 s")),
    svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none",
      role: "img", "aria-label": "events stored per second" },
      svg("line", { class: "axis", x1: 0, y1: height, x2: width, y2: height }),
      bars),
    h("div", { class: "row muted" }, h("span", {}, "−60 s"), h("span", {}, "now")));
}

// ---------------------------------------------------------------------------------------
// One event

async function eventPage(route) {
  const id = route.id;
  const holder = h("div", { id: "event" });
  replace(main, h("p", {}, h("a", { href: "#/events" }, "← Events")), holder);
  const refresh = async () => {
    const event = await api("/api/v1/events/" + encodeURIComponent(id));
    replace(holder, eventDetail(event));
    return event;
  };
  const event = await refresh();
  if (event.deliveries.some((d) => d.status === "pending")) every(refresh);
}

function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function prettyBody(event) {
  if (event.body_encoding === "base64") return hexDump(atob(event.body));
  try {
    return JSON.stringify(JSON.parse(event.body), null, 2);
  } catch {
    return event.body;
  }
}

function hexDump(binary) {
  const lines = [];
  for (let offset = 0; offset < binary.length; offset += 16) {
    const chunk = binary.slice(offset, offset + 16);
    const hex = [...chunk].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join(" ");
    const ascii = [...chunk].map((c) => (c >= " " && c <= "~" ? c : ".")).join("");
    lines.push(offset.toString(16).padStart(8, "0") + "  " + hex.padEnd(48) + "  " + ascii);
  }
  return lines.join("\n");
}

function eventDetail(event) {
  const v = event.verification || {};
  return [
    h("h1", { class: "wrap" }, "Event ", h("span", { class: "mono" }, event.id)),
    h("div", { class: "panel" }, facts([
      ["Status", badge(event.status)],
      ["Source", event.source],
      ["Topic", event.topic],
      ["Tenant", event.tenant],
      ["Provider id", event.provider_id],
      ["Received", time(event.received_at) + " UTC"],
      ["Provider timestamp", event.provider_timestamp],
      ["Request", event.method + " " + event.path],
      ["Size", event.size + " bytes"],
    ])),
    h("h2", {}, "Verification"),
    h("div", { class: "panel", id: "verification" }, facts([
      ["Scheme", v.scheme || "none"],
      ["Key id", v.key_id],
      ["Issuer", v.issuer],
      ["Subject", v.subject],
    ])),
    h("h2", {}, "Deliveries"),
    event.deliveries.length
      ? event.deliveries.map((d) => deliveryBlock(event, d))
      : h("p", { class: "muted" }, "No route chose a destination for this event."),
    h("h2", {}, "Headers"),
    h("table", { id: "headers" }, h("tbody", {}, event.headers.map((x) =>
      h("tr", {}, h("th", { class: "mono" }, x.name), h("td", { class: "mono wrap" }, x.value))))),
    h("h2", {}, "Body", h("span", { class: "muted" }, event.body_encoding === "base64" ? " (binary, hex)" : "")),
    h("pre", { id: "body" }, prettyBody(event)),
  ];
}

function deliveryBlock(event, d) {
  const message = h("span", { class: "message" });
  const replay = isOperator()
    ? h("button", { type: "button", class: "replay", dataset: { destination: d.destination },
      onclick: async (e) => {
        e.target.disabled = true;
        try {
          const result = await api("/api/v1/events/" + encodeURIComponent(event.id) + "/replay",
            { method: "POST", body: { destination: d.destination, include_delivered: d.status === "delivered" } });
          message.textContent = "replayed " + result.replayed + " delivery";
          await render();
        } catch (err) {
          report(err);
          e.target.disabled = false;
        }
      } }, d.status === "delivered" ? "Send again" : "Replay")
    : null;
  return h("div", { class: "panel delivery", dataset: { destination: d.destination, status: d.status } },
    h("div", { class: "row" },
      h("h3", {}, d.destination, " ", badge(d.status)),
      h("div", { class: "actions" }, replay, message)),
    facts([
      ["webhook-id", h("span", { class: "mono" }, d.webhook_id)],
      ["Attempts", String(d.attempts)],
      ["Next attempt", time(d.next_attempt_at)],
      ["Last error", d.last_error],
    ]),
    d.history.length
      ? h("table", { class: "attempts" },
        h("thead", {}, h("tr", {}, h("th", {}, "Started (UTC)"), h("th", { class: "num" }, "ms"),
          h("th", {}, "Status"), h("th", {}, "Outcome"), h("th", {}, "Response"), h("th", {}, "Error"))),
        h("tbody", {}, d.history.map((a) => h("tr", {},
          h("td", { class: "mono" }, time(a.started_at)),
          h("td", { class: "num" }, a.duration_ms),
          h("td", {}, a.status_code === null ? "" : a.status_code),
          h("td", {}, badge(a.outcome)),
          h("td", { class: "mono wrap" }, a.response || ""),
          h("td", { class: "wrap" }, a.error || "")))))
      : h("p", { class: "muted" }, "No attempt yet."));
}

// ---------------------------------------------------------------------------------------
// Refused requests

async function refusalsPage(route) {
  const p = route.params;
  const sources = (await api("/api/v1/sources")).items.map((s) => s.name);
  const source = h("select", { name: "source", id: "refusal-source" },
    h("option", { value: "" }, "any"), sources.map((s) => h("option", { value: s }, s)));
  source.value = p.get("source") || "";
  const kind = h("input", { name: "kind", id: "refusal-kind", placeholder: "bad_signature", value: p.get("kind") || "" });
  const form = h("form", { class: "filters" },
    h("label", {}, "Source", source), h("label", {}, "Reason kind", kind),
    h("button", { type: "submit", class: "primary" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = "#/refusals" + query({ source: source.value, kind: kind.value });
  });
  const list = h("div", { id: "refusals" });
  replace(main, h("h1", {}, "Refused requests"),
    h("p", { class: "muted" }, "Why providers' calls fail: the last 5000 refusals are kept (sampled under a flood), credentials redacted."),
    form, list);
  const filters = { source: p.get("source"), kind: p.get("kind"), cursor: p.get("cursor") };
  const page = await api("/api/v1/refusals" + query({ ...filters, limit: 100 }));
  const rows = page.items.map((r) => h("tr", { dataset: { kind: r.kind } },
    h("td", { class: "mono" }, time(r.received_at)),
    h("td", {}, r.source),
    h("td", {}, h("span", { class: "badge dead" }, r.kind)),
    h("td", { class: "num" }, r.status),
    h("td", { class: "wrap" }, r.detail),
    h("td", { class: "mono" }, r.peer || ""),
    h("td", {}, h("details", {},
      h("summary", {}, r.method + " " + r.path),
      h("table", {}, h("tbody", {}, r.headers.map((x) =>
        h("tr", {}, h("th", { class: "mono" }, x.name), h("td", { class: "mono wrap" }, x.value))))),
      h("p", { class: "muted" }, "Body: " + r.body_size + " bytes" + (r.body_encoding === "base64" ? " (binary, hex)" : "") + ", first 4 KiB:"),
      h("pre", {}, r.body_encoding === "base64" ? hexDump(atob(r.body_head)) : r.body_head)))));
  replace(list,
    h("table", { id: "refusals-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "When (UTC)"), h("th", {}, "Source"), h("th", {}, "Reason"),
        h("th", { class: "num" }, "Answered"), h("th", {}, "Detail"), h("th", {}, "Peer"), h("th", {}, "Request"))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "No refused requests.")))),
    h("div", { class: "pager" }, page.next_cursor
      ? h("a", { href: "#/refusals" + query({ source: filters.source, kind: filters.kind, cursor: page.next_cursor }) }, "Older →")
      : null));
}

// ---------------------------------------------------------------------------------------
// Destinations

function age(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 120) return seconds.toFixed(1) + " s";
  if (seconds < 7200) return (seconds / 60).toFixed(1) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

async function destinationsPage() {
  const holder = h("div", { id: "destinations" });
  const message = h("p", { class: "message", id: "destination-message" });
  replace(main, h("h1", {}, "Destinations"), message, holder);
  const act = async (button, path, body, done) => {
    button.disabled = true;
    try {
      const result = await api(path, { method: "POST", body });
      message.textContent = done(result);
      await refresh();
    } catch (e) {
      report(e);
      button.disabled = false;
    }
  };
  const refresh = async () => {
    const list = await api("/api/v1/destinations");
    const rows = list.items.map((d) => {
      const name = encodeURIComponent(d.name);
      const buttons = isOperator() && d.kind
        ? [
          d.paused
            ? h("button", { type: "button", class: "resume", onclick: (e) =>
              act(e.target, "/api/v1/destinations/" + name + "/resume", undefined, () => d.name + " resumed") }, "Resume")
            : h("button", { type: "button", class: "pause", onclick: (e) =>
              act(e.target, "/api/v1/destinations/" + name + "/pause", undefined, () => d.name + " paused") }, "Pause"),
          h("button", { type: "button", class: "replay-dead", disabled: d.dead === 0, onclick: (e) =>
            act(e.target, "/api/v1/replay", { destination: d.name, status: "dead" },
              (r) => "replaying " + r.replayed + " dead deliveries to " + d.name) }, "Replay dead"),
        ]
        : null;
      return h("tr", { dataset: { name: d.name } },
        h("td", {}, d.name),
        h("td", {}, d.kind || h("span", { class: "muted" }, "removed")),
        h("td", { class: "state" }, badge(d.paused ? "paused" : "active")),
        h("td", { class: "num" }, d.pending),
        h("td", { class: "num" }, d.in_flight),
        h("td", { class: "num" }, d.delivered),
        h("td", { class: "num" }, d.dead),
        h("td", { class: "num" }, age(d.oldest_pending_age_seconds)),
        h("td", { class: "num" }, d.success_rate === null ? "" : (d.success_rate * 100).toFixed(1) + " %"),
        h("td", { class: "wrap" }, d.last_error ? [d.last_error, h("br"), h("span", { class: "muted" }, time(d.last_error_at))] : ""),
        h("td", {}, h("div", { class: "actions" }, buttons)));
    });
    replace(holder, h("table", { id: "destinations-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Kind"), h("th", {}, "State"),
        h("th", { class: "num" }, "Backlog"), h("th", { class: "num" }, "In flight"),
        h("th", { class: "num" }, "Delivered"), h("th", { class: "num" }, "Dead"),
        h("th", { class: "num" }, "Oldest pending"), h("th", { class: "num" }, "Success (attempts)"),
        h("th", {}, "Last error"), h("th", {}, ""))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 11, class: "muted" }, "No destination configured.")))));
  };
  await refresh();
  // Its counts grow with the store (about 130 ms for a million deliveries): every 5 s.
  every(refresh, 5000);
}

// ---------------------------------------------------------------------------------------
// Sources

async function sourcesPage() {
  const holder = h("div", { id: "sources" });
  replace(main, h("h1", {}, "Sources"),
    h("p", { class: "muted" }, "Counters since this process started."), holder);
  const refresh = async () => {
    const list = await api("/api/v1/sources");
    replace(holder, h("table", { id: "sources-table" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Path"), h("th", {}, "Methods"),
        h("th", {}, "Preset"), h("th", {}, "Schemes"), h("th", { class: "num" }, "Acknowledged"),
        h("th", { class: "num" }, "Refused"), h("th", {}, "By outcome"))),
      h("tbody", {}, list.items.map((s) => h("tr", { dataset: { name: s.name } },
        h("td", {}, h("a", { href: "#/events" + query({ source: s.name }) }, s.name)),
        h("td", { class: "mono" }, s.path),
        h("td", {}, s.methods.join(", ")),
        h("td", {}, s.preset || ""),
        h("td", {}, s.schemes.join(", ")),
        h("td", { class: "num" }, s.acknowledged),
        h("td", { class: "num" }, s.refused),
        h("td", {}, s.outcomes.map((o) => h("div", {}, o.outcome + ": " + o.count))))))));
  };
  await refresh();
  every(refresh, 5000);
}

// ---------------------------------------------------------------------------------------

document.getElementById("logout").addEventListener("click", logout);
window.addEventListener("hashchange", render);
(async () => {
  try {
    const session = await api("/ui/session");
    if (session.authenticated) {
      state.session = session;
      start();
    } else {
      showLogin("");
    }
  } catch (e) {
    report(e);
  }
})();
