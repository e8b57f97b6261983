// Freshet's browser client, served by the sse-gateway at /v1/client.js.
//
//   const stream = Freshet.connect({
//     url: "https://gateway.example/v1/stream",   // default: this script's origin
//     token: "<JWT>",                             // or a function returning one
//     channels: ["breaking"],
//     route: "/articles/:id",                     // route template for RUM
//     onDelivery: (d) => render(d),               // each delivery once, in order
//     onEvent: (type, data) => {},                // ready, missed, reconnect, disconnect, error
//   });
//   // or listen on window: "freshet:delivery" (detail: the delivery),
//   // "freshet:ready", "freshet:missed", "freshet:reconnect", ...
//   stream.close();
//
// It wraps EventSource: reconnects with the last event id (also after the
// browser gave up on a non-200 answer), drops duplicate deliveries by
// event_id, and sends RUM beacons (fetch with keepalive and retries while
// the page lives, navigator.sendBeacon when it goes away): the web-vitals
// (LCP, INP, CLS, TTFB, FCP) of the page and the lag of every delivery
// (receive time minus its commit time).
import { onCLS, onFCP, onINP, onLCP, onTTFB } from "web-vitals";

const SEEN_MAX = 2048;

function scriptOrigin() {
  try {
    const s = document.currentScript;
    if (s && s.src) return new URL(s.src).origin;
  } catch (e) {
    /* fall through */
  }
  return window.location.origin;
}

const origin = scriptOrigin();

function randomId() {
  const a = new Uint8Array(16);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

function sessionId() {
  try {
    let id = sessionStorage.getItem("freshet.session");
    if (!id) {
      id = randomId();
      sessionStorage.setItem("freshet.session", id);
    }
    return id;
  } catch (e) {
    return randomId();
  }
}

class Rum {
  constructor(opts) {
    this.url = opts.rumUrl || origin + "/v1/rum";
    this.route = opts.route || "";
    this.token = opts.token;
    this.session = sessionId();
    this.seq = 0;
    this.metrics = [];
    this.lags = [];
    this.outbox = [];
    this.sending = false;
    this.interval = opts.beaconInterval || 10000;
    this.timer = setInterval(() => this.flush(), this.interval);
    const report = (m) => {
      this.metrics.push({
        name: m.name,
        value: m.value,
        delta: m.delta,
        rating: m.rating,
        navigation_type: m.navigationType || "unknown",
        id: m.id,
      });
    };
    onTTFB(report);
    onFCP(report);
    onLCP(report, { reportAllChanges: false });
    onCLS(report);
    onINP(report);
    const hidden = () => {
      if (document.visibilityState === "hidden") this.flush(true);
    };
    document.addEventListener("visibilitychange", hidden);
    window.addEventListener("pagehide", () => this.flush(true));
  }

  lag(eventId, lagMs) {
    this.lags.push({ event_id: eventId, lag_ms: lagMs });
    if (this.lags.length >= 100) this.flush();
  }

  // flush turns what was measured into a beacon and sends what is pending.
  // Beacons go with fetch (keepalive) and stay in the outbox until the
  // gateway answered, so that a gateway restart loses none; when the page
  // is going away, with navigator.sendBeacon, the one way that outlives it.
  // A beacon re-sent keeps its seq, hence its event_id: duplicates can be
  // dropped downstream.
  flush(final) {
    if (this.metrics.length || this.lags.length) {
      this.outbox.push({
        session_id: this.session,
        seq: ++this.seq,
        route: this.route,
        client_time: Date.now(),
        connection: (navigator.connection && navigator.connection.effectiveType) || "",
        metrics: this.metrics.splice(0, 32),
        lags: this.lags.splice(0, 128),
      });
      if (this.outbox.length > 20) this.outbox.splice(0, this.outbox.length - 20);
    }
    if (final) {
      for (const b of this.outbox) {
        if (!(navigator.sendBeacon && navigator.sendBeacon(this.target(), this.blob(b)))) break;
      }
      this.outbox = [];
      return true;
    }
    this.drain();
    return this.outbox.length > 0;
  }

  target() {
    let url = this.url;
    const tok = typeof this.token === "function" ? this.token() : this.token;
    if (tok) url += (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(tok);
    return url;
  }

  // text/plain needs no CORS preflight; the gateway accepts it.
  blob(b) {
    return new Blob([JSON.stringify(b)], { type: "text/plain" });
  }

  drain() {
    if (this.sending || this.outbox.length === 0) return;
    this.sending = true;
    const b = this.outbox[0];
    let done = false;
    fetch(this.target(), { method: "POST", body: this.blob(b), keepalive: true, credentials: "omit" })
      .then((r) => {
        // 2xx: stored. Other 4xx but 429: the gateway will never take it.
        done = r.ok || (r.status >= 400 && r.status < 500 && r.status !== 429);
      })
      .catch(() => {})
      .finally(() => {
        this.sending = false;
        if (done && this.outbox[0] === b) {
          this.outbox.shift();
          this.drain();
        }
      });
  }

  close() {
    clearInterval(this.timer);
    this.flush(true);
  }
}

class Stream {
  constructor(opts) {
    this.opts = opts;
    this.url = opts.url || origin + "/v1/stream";
    this.lastId = opts.lastEventId || "";
    this.seen = new Set();
    this.seenOrder = [];
    this.closed = false;
    this.retryMs = 1000;
    this.rum = opts.rum === false ? null : new Rum(opts);
    this.open();
  }

  streamUrl() {
    const u = new URL(this.url, window.location.href);
    const tok = typeof this.opts.token === "function" ? this.opts.token() : this.opts.token;
    if (tok) u.searchParams.set("token", tok);
    if (this.opts.channels && this.opts.channels.length) u.searchParams.set("channels", this.opts.channels.join(","));
    // EventSource sends Last-Event-ID itself when it reconnects; a new
    // EventSource (after it gave up) needs the query parameter.
    if (this.lastId) u.searchParams.set("lastEventId", this.lastId);
    return u.toString();
  }

  open() {
    if (this.closed) return;
    const es = new EventSource(this.streamUrl(), { withCredentials: !!this.opts.withCredentials });
    this.es = es;
    es.addEventListener("delivery", (e) => this.delivery(e));
    for (const type of ["ready", "missed", "reconnect", "disconnect"]) {
      es.addEventListener(type, (e) => {
        if (e.lastEventId) this.lastId = e.lastEventId;
        if (type === "ready") this.retryMs = 1000;
        this.emit(type, e.data ? JSON.parse(e.data) : null);
      });
    }
    es.onerror = () => {
      // EventSource retries network errors itself; after a non-200 answer
      // (readyState CLOSED: 401, 429, 503...) it gives up for good, so start
      // a new one, backing off up to 30 s while the answers stay the same.
      if (es.readyState === EventSource.CLOSED && !this.closed) {
        this.emit("error", { readyState: es.readyState });
        setTimeout(() => this.open(), this.retryMs + Math.random() * this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 30000);
      }
    };
  }

  delivery(e) {
    if (e.lastEventId) this.lastId = e.lastEventId;
    let d;
    try {
      d = JSON.parse(e.data);
    } catch (err) {
      return;
    }
    if (this.seen.has(d.event_id)) return;
    this.seen.add(d.event_id);
    this.seenOrder.push(d.event_id);
    if (this.seenOrder.length > SEEN_MAX) this.seen.delete(this.seenOrder.shift());
    if (d.committed_at && this.rum) this.rum.lag(d.event_id, Date.now() - d.committed_at);
    if (this.opts.onDelivery) this.opts.onDelivery(d, e.lastEventId);
    window.dispatchEvent(new CustomEvent("freshet:delivery", { detail: d }));
  }

  emit(type, data) {
    if (this.opts.onEvent) this.opts.onEvent(type, data);
    window.dispatchEvent(new CustomEvent("freshet:" + type, { detail: data }));
  }

  flush() {
    return this.rum ? this.rum.flush() : false;
  }

  close() {
    this.closed = true;
    if (this.es) this.es.close();
    if (this.rum) this.rum.close();
  }
}

function connect(opts) {
  return new Stream(opts || {});
}

window.Freshet = { connect, version: "1" };
