// Package web holds the browser client of the gateway: the sources in src/
// (with package.json and package-lock.json), and dist/client.js, the bundle
// that esbuild builds from them with the web-vitals library (`npm ci && npm
// run build`). The bundle is committed so that `go build` works without
// Node; TestBundleIsBuiltFromSources rebuilds it and fails when the
// committed file differs from what the sources give.
//
// Handler serves the embedded bundle. It is safe for concurrent use.
package web
