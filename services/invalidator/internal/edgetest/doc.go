// Package edgetest holds the invalidator's end-to-end tests through real
// edge caches: Postgres with the example schema, the reference origin
// (pkg/origin) over it, two Varnish instances with the reference VCL in
// front, the Kafka-protocol broker, and the invalidator's engine purging
// both. It has no code besides its tests.
package edgetest
