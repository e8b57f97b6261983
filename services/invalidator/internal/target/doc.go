// Package target sends purge requests to one edge cache: Varnish (PURGE
// with xkey or xkey-softpurge, PURGE of a url with its Host, BAN of a url
// prefix), Fastly (the surrogate-key purge API), Cloudflare (purge_cache by
// tags, files and prefixes) and a generic HTTP webhook with a templated
// JSON body. A Target makes exactly one HTTP request per Purge call; the
// invalidator's sender decides what goes in a request (within the limits
// of the pipeline file), when, and how often to retry.
//
// Errors are *Error: the HTTP status when there was an answer, whether a
// retry can help (Permanent is set for a refused token and for a request
// the target calls bad), and the Retry-After the target asked for. Tokens
// and secret headers are never part of an error, a log or a String.
//
// Concurrency: a Target is safe for concurrent use.
package target
