// Package cursor is the SSE event id of the gateway: a position in
// content.deliveries from which any replica can resume a stream.
//
// A Cursor holds, for each partition a stream reads, the next offset to
// deliver. It is written "3-1042.7-88" (partition 3 from offset 1042,
// partition 7 from offset 88): URL-safe, so it works as the Last-Event-ID
// header and as the lastEventId query parameter alike, and integer-free
// readers never need to understand it.
//
// Parse reads text from outside (browsers, proxies) and never panics; it
// rejects anything String would not write. Values are plain data, safe to
// share once built.
package cursor
