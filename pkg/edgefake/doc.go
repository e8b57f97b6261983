// Package edgefake holds local stand-ins of the Fastly and Cloudflare purge
// APIs, for tests and load tests of code that purges edge caches (the
// invalidator). Each is an httptest server that follows the provider's
// documented request format and limits, records what it accepted, and
// answers as the provider does when a limit is crossed:
//
//   - Fastly (NewFastly): POST /service/{service_id}/purge with the keys in
//     a Surrogate-Key header (space-separated) or a JSON body
//     {"surrogate_keys": [...]}, at most 256 keys a request; POST
//     /purge/{host}/{path} for one url; the token in Fastly-Key; soft purge
//     with Fastly-Soft-Purge: 1. Documented at
//     https://www.fastly.com/documentation/reference/api/purging/ ("Purge
//     multiple surrogate key tags": "Up to 256 surrogate keys can be purged
//     in one batch request").
//   - Cloudflare (NewCloudflare): POST /zones/{zone_id}/purge_cache with a
//     JSON body holding one of "files", "tags", "prefixes" or "hosts", at
//     most 100 items a request (500 on enterprise), Authorization: Bearer
//     <token>; give it a plan's purge rate limit as Options.Rate and Burst
//     (pipeline.CloudflarePlan: free 5 a minute with a bucket of 25, pro 5/s
//     and 25, business 10/s and 50, enterprise 50/s and 500). Documented at
//     https://developers.cloudflare.com/cache/how-to/purge-cache/ and the
//     API reference of "Purge Cached Content"
//     (https://developers.cloudflare.com/api/resources/cache/methods/purge/).
//
// Both answer 429 with a Retry-After header (whole seconds) when their rate
// limit (Options.Rate, Options.Burst) is exhausted, 401 (Fastly) or 403
// (Cloudflare) to a wrong token, and 400 to a request over the limits, which
// they also count as a Violation so a test can assert none happened. The
// error bodies have each provider's shape; their codes other than
// Cloudflare's 10000 (authentication) and 971 (throttled) are the fake's
// own.
//
// Concurrency: a Server is safe for concurrent use; its accessors return
// copies.
package edgefake
