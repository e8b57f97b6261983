// Package app is the invalidator binary: its configuration (FRESHET_*
// variables), its commands (run, check) and the wiring of the engine into
// pkg/lifecycle with the admin listener.
//
// Concurrency: Main's function is called once, by lifecycle.Main.
package app
