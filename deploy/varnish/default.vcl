vcl 4.1;

# Freshet's edge cache: Varnish in front of the reference origin.
#
# Purge API (what the invalidator's Varnish target sends):
#   PURGE <url>                       purge one url (same Host header as the cached request)
#   PURGE / with "xkey: k1 k2"        purge every object tagged with any of the keys
#   PURGE / with "xkey-softpurge: k"  soft purge: objects go stale, served while revalidated
# The origin tags responses with "xkey" (space-separated surrogate keys);
# the header is removed before delivery so clients never see it.
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
    # Streams and beacons are never cached.
    if (req.url ~ "^/v1/(stream|rum|events)") {
        return (pass);
    }
}

sub vcl_backend_response {
    # Surrogate-Key (Fastly style) is accepted as an alias of xkey.
    if (!beresp.http.xkey && beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
    }
    # Keep stale objects around so soft purges can serve while revalidating.
    set beresp.grace = 1m;
}

sub vcl_deliver {
    unset resp.http.xkey;
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
