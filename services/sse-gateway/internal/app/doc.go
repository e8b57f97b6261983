// Package app is the sse-gateway binary: its commands (serve, the default;
// check, which validates the pipeline file; token, which mints an HS256 token
// from the same configuration) and the wiring of the gateway with the admin
// server, Prometheus registry and lifecycle.
//
// Main is called once per process, by main through lifecycle.Main.
package app
