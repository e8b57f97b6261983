vcl 4.1;

# Freshet's edge cache: Varnish in front of the reference origin.
#
# Purge API (what the invalidator's Varnish target sends; only from the
# purgers acl below):
#   PURGE <url>                        purge one url, every variant (send the
#                                      Host header of the cached request)
#   PURGE / with "xkey: k1 k2"         purge every object tagged with any key
#                                      ("url:/a/b" tags every object of the
#                                      url /a/b, on any host)
#   PURGE / with "xkey-softpurge: k1"  soft purge: the objects go stale and
#                                      are served (grace) while refetched
#   BAN / with "X-Ban-Url: <regex>"    ban every object whose url matches the
#                                      regex (e.g. ^/section/tech/ for a url
#                                      prefix; escape regex metacharacters);
#                                      "X-Ban-Host: <regex>" narrows it to
#                                      hosts. A regex holds no whitespace or
#                                      double quote; 400 for a bad one.
# Answers: 200 with "Purged <n>", "Soft purged <n>", "Banned"; 403 outside
# the acl.
#
# The origin tags responses with "xkey" (or "Surrogate-Key"), space-separated
# surrogate keys; both are removed before delivery so clients never see them.
# Bans test obj.http.X-Url and X-Host, which are stored with each object and
# also removed before delivery, so the ban lurker can apply bans in the
# background.
#
# The local stack and docker compose render BACKEND_HOST / BACKEND_PORT
# into this file before starting varnishd.

import std;
import xkey;

backend origin {
    .host = "BACKEND_HOST";
    .port = "BACKEND_PORT";
    .connect_timeout = 1s;
    .first_byte_timeout = 5s;
}

# Who may purge: loopback and the private ranges a compose or Kubernetes
# network uses. Edit for your network.
acl purgers {
    "127.0.0.1";
    "::1";
    "10.0.0.0"/8;
    "172.16.0.0"/12;
    "192.168.0.0"/16;
}

sub vcl_recv {
    if (req.method == "PURGE") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (req.http.xkey) {
            set req.http.n-gone = xkey.purge(req.http.xkey);
            return (synth(200, "Purged " + req.http.n-gone));
        }
        if (req.http.xkey-softpurge) {
            set req.http.n-gone = xkey.softpurge(req.http.xkey-softpurge);
            return (synth(200, "Soft purged " + req.http.n-gone));
        }
        return (purge);
    }
    if (req.method == "BAN") {
        if (client.ip !~ purgers) {
            return (synth(403, "Forbidden"));
        }
        if (!req.http.X-Ban-Url || req.http.X-Ban-Url ~ {"[\s"]"} || req.http.X-Ban-Host ~ {"[\s"]"}) {
            return (synth(400, "X-Ban-Url: a regex without whitespace or double quotes is required"));
        }
        if (req.http.X-Ban-Host) {
            set req.http.ban = "obj.http.X-Url ~ " + req.http.X-Ban-Url + " && obj.http.X-Host ~ " + req.http.X-Ban-Host;
        } else {
            set req.http.ban = "obj.http.X-Url ~ " + req.http.X-Ban-Url;
        }
        if (std.ban(req.http.ban)) {
            return (synth(200, "Banned"));
        }
        return (synth(400, "Bad ban: " + std.ban_error()));
    }
    # Streams, beacons, ingest and the origin's demo page are never cached.
    if (req.url ~ "^/v1/(stream|rum|events)" || req.url ~ "^/demo(/|\?|$)") {
        if (req.url ~ "^/v1/stream") {
            # An SSE stream is one long response: not cut after send_timeout
            # (10m by default); heartbeats keep idle_send_timeout happy.
            set sess.send_timeout = 1d;
        }
        return (pass);
    }
    # The origin answers HTML or JSON by Accept (Vary: Accept). Keep two
    # variants per page, not one per browser's Accept string: JSON when
    # application/json is asked for without text/html, HTML otherwise.
    if (req.http.Accept ~ "application/json" && req.http.Accept !~ "text/html") {
        set req.http.Accept = "application/json";
    } else {
        set req.http.Accept = "text/html";
    }
}

sub vcl_backend_response {
    # Surrogate-Key (Fastly style) is accepted as an alias of xkey.
    if (!beresp.http.xkey && beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
    # Every object is also tagged with its url, "url:/a/b", so that one
    # xkey purge takes many urls (the invalidator's url_keys), where PURGE
    # <url> takes one.
    if (beresp.http.xkey) {
        set beresp.http.xkey = beresp.http.xkey + " url:" + bereq.url;
    } else {
        set beresp.http.xkey = "url:" + bereq.url;
    }
    # For bans (X-Ban-Url, X-Ban-Host), tested by the ban lurker.
    set beresp.http.X-Url = bereq.url;
    set beresp.http.X-Host = bereq.http.host;
    # Stale objects are kept for soft purges to serve while revalidating:
    # as long as the origin's stale-while-revalidate says (Varnish reads it
    # into grace), or 1m when it says nothing.
    if (beresp.http.Cache-Control !~ "stale-while-revalidate=") {
        set beresp.grace = 1m;
    }
    # A failed background refresh keeps the stale object rather than
    # replacing it with an error.
    if (beresp.status >= 500 && bereq.is_bgfetch) {
        return (abandon);
    }
}

sub vcl_deliver {
    unset resp.http.xkey;
    unset resp.http.Surrogate-Key;
    unset resp.http.X-Url;
    unset resp.http.X-Host;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
