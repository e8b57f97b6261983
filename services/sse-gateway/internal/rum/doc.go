// Package rum takes the browser beacons of POST /v1/rum: what the Freshet
// client measured (web-vitals and the lag of SSE deliveries), and produces
// them as RumBeacon records.
//
// Decode reads a beacon from outside bytes and never panics; it accepts
// only what the schema allows (known metric names and ratings, finite
// values, bounded counts and lengths). The Handler adds what the browser
// cannot be trusted with: the receive time, a keyed hash (HMAC-SHA256) of
// the authenticated user instead of the user id, a device class from the
// User-Agent and the region an edge header gives. The client's IP address
// is used for rate limiting in memory only: it is never stored, produced
// or logged.
//
// A Handler is safe for concurrent use.
package rum
