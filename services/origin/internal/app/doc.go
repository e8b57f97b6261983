// Package app is the origin binary: its configuration (FRESHET_* variables),
// its commands (run, check), and the wiring of pkg/origin's handler, an HTTP
// listener and a database readiness probe into pkg/lifecycle with the admin
// listener.
//
// Concurrency: Main's function is called once, by lifecycle.Main.
package app
