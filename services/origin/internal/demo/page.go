package demo

// pageHTML is the demo page. It loads the gateway's browser client from
// this host (/v1/client.js, proxied), gets a token for the picked user from
// /demo/token, and shows: the user's live feed, each delivery with its
// freshness (receive time minus commit time, both this machine's clocks in
// the local stack); an edit form (/demo/edit); and the edited item's page as
// the edge cache serves it (a fetch through this host, which is Varnish in
// the local stack), polled after an edit until the fresh version arrives.
const pageHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Freshet live demo</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f4f6f9}
header{background:#14324f;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#c6d6e8}
main{display:grid;grid-template-columns:1fr 1fr;gap:16px;padding:16px 24px}
section{background:#fff;border-radius:8px;padding:14px 16px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h2{font-size:16px;margin:0 0 8px}
#feed{list-style:none;margin:0;padding:0}
#feed li{border-bottom:1px solid #eef0f3;padding:6px 0}
.fresh{display:inline-block;background:#e3f6e8;color:#1a6b35;border-radius:10px;padding:0 8px;font-weight:600}
.stale{background:#fdecea;color:#8a1f11}
.muted{color:#6b7483;font-size:13px}
code{background:#eef0f3;padding:1px 5px;border-radius:4px;font-size:13px}
input[type=text]{width:60%;padding:4px}
</style></head>
<body>
<header><h1>Freshet live demo</h1>
<p>A row committed in Postgres becomes a live update in this feed and a fresh page in the edge cache.</p></header>
<main>
<section id="who">
<h2>1. Pick a demo user</h2>
<select id="user">{{range .Users}}<option value="{{.ID}}">{{.ID}}{{if .Profile}} ({{.Profile}}){{end}}</option>{{end}}</select>
<p id="status" class="muted">connecting…</p>
</section>
<section>
<h2>2. Edit content</h2>
<form id="edit">
<select id="item">{{range .Items}}<option value="{{.ID}}" data-url="{{.URL}}">{{.ID}}: {{.Title}}</option>{{end}}</select>
<p><input type="text" id="title" placeholder="a new title" maxlength="200"> <button type="submit">Save</button></p>
</form>
<p id="saved" class="muted">Or in psql: <code>update content set title = 'Hello from psql' where id = 1</code></p>
</section>
<section>
<h2>Live feed</h2>
<ul id="feed"><li class="muted" id="empty">Nothing yet: edit an item the user follows or likes.</li></ul>
</section>
<section>
<h2>The page in the edge cache</h2>
<p>Through the edge: <a id="edge-link" href="#"></a></p>
<p><b id="edge-title">…</b> <span id="edge-meta" class="muted"></span></p>
<p id="edge-fresh" class="muted"></p>
</section>
</main>
<script src="/v1/client.js"></script>
<script>
(function () {
  const channels = {{.Channels}};
  const renewMs = {{.RenewMs}};
  const $ = (id) => document.getElementById(id);
  let token = "", stream = null, renew = null, watchSeq = 0, pendingEdit = "";

  async function getToken(user) {
    const r = await fetch("/demo/token", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({user})});
    if (!r.ok) throw new Error("token: " + r.status);
    return (await r.json()).token;
  }

  async function pick(user) {
    if (stream) stream.close();
    clearInterval(renew);
    $("feed").replaceChildren();
    $("status").textContent = "connecting as " + user + "…";
    try {
      token = await getToken(user);
    } catch (e) {
      $("status").textContent = "no token for " + user + ": " + e.message;
      return;
    }
    renew = setInterval(async () => { try { token = await getToken(user); } catch (e) {} }, renewMs);
    stream = Freshet.connect({
      url: "/v1/stream", token: () => token, channels, route: "/demo",
      onDelivery: (d) => show(d),
      onEvent: (type) => {
        if (type === "ready") $("status").textContent = "Live: " + user + "'s feed is open. Edit something " + user + " follows.";
        else if (type === "error" || type === "reconnect") $("status").textContent = "reconnecting…";
      },
    });
  }

  function show(d) {
    const ms = Math.max(0, Date.now() - d.committed_at);
    const c = d.content || {};
    const li = document.createElement("li");
    const b = document.createElement("b");
    b.textContent = c.title || "(untitled)";
    const f = document.createElement("span");
    f.className = "fresh";
    f.textContent = "fresh in " + ms + " ms";
    const m = document.createElement("span");
    m.className = "muted";
    const why = (d.reasons || []).map((r) => r.match ? r.rule + " " + r.match : r.rule).join(", ");
    m.textContent = " commit → screen · " + (d.op || "") + " · " + (d.channel ? "channel " + d.channel : "because " + why);
    li.append(b, " ", f, m);
    $("feed").prepend(li);
    if (pendingEdit && c.title === pendingEdit) {
      $("saved").textContent = "Saved, and in the feed " + ms + " ms after the commit.";
      pendingEdit = "";
    }
    for (const o of $("item").options) if (o.value === c.id && c.title) o.textContent = c.id + ": " + c.title;
    const sel = $("item").selectedOptions[0];
    if (sel && c.id === sel.value) watchEdge(sel.dataset.url, c.version || 0, d.committed_at);
  }

  async function edge(url) {
    const r = await fetch(url, {headers: {Accept: "application/json"}, cache: "no-store"});
    const j = await r.json();
    const it = j.item || {};
    $("edge-title").textContent = it.title || "";
    $("edge-meta").textContent = "(X-Cache: " + (r.headers.get("X-Cache") || "none") + ", version " + (it.version || "?") + ")";
    return Number(it.version || 0);
  }

  // watchEdge polls the item's page through the edge until it shows at
  // least version (0: the title just saved), then says how long after the
  // commit the edge copy was fresh.
  async function watchEdge(url, version, committedAt, title) {
    const seq = ++watchSeq;
    $("edge-link").textContent = url;
    $("edge-link").href = url;
    $("edge-fresh").className = "fresh stale";
    $("edge-fresh").textContent = "Edge copy stale: waiting for the purge…";
    for (let i = 0; i < 300 && seq === watchSeq; i++) {
      let v = 0;
      try { v = await edge(url); } catch (e) {}
      if ((version && v >= version) || (title && $("edge-title").textContent === title)) {
        const f = $("edge-fresh");
        f.className = "fresh";
        f.textContent = "Edge copy fresh " + Math.max(0, Date.now() - committedAt) + " ms after the commit";
        return;
      }
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  $("user").addEventListener("change", (e) => pick(e.target.value));
  $("item").addEventListener("change", () => { const o = $("item").selectedOptions[0]; if (o) { $("edge-fresh").textContent = ""; edge(o.dataset.url); } });
  $("edit").addEventListener("submit", async (e) => {
    e.preventDefault();
    const o = $("item").selectedOptions[0], title = $("title").value.trim();
    if (!o || !title) return;
    const r = await fetch("/demo/edit", {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({id: o.value, title})});
    const j = await r.json();
    if (!r.ok) { $("saved").textContent = "Not saved: " + j.error; return; }
    $("saved").textContent = "Saved: committed in Postgres. Waiting for the feed and the edge…";
    pendingEdit = title;
    watchEdge(o.dataset.url, 0, j.committed_at, title);
  });
  const first = $("item").selectedOptions[0];
  if (first) { $("edge-link").textContent = first.dataset.url; $("edge-link").href = first.dataset.url; edge(first.dataset.url); }
  pick($("user").value);
})();
</script>
</body></html>
`
