// Package origin is Freshet's reference origin: a small read API over the
// content table that a pipeline file captures, meant to sit behind an edge
// cache (Varnish, Fastly, Cloudflare) and to show how pages are tagged so
// that the invalidator's purges reach exactly the pages a change makes
// stale.
//
// # Contract
//
//	h, err := origin.NewHandler(db, p, origin.Options{})
//
// NewHandler(db *pgxpool.Pool, p *pipeline.Pipeline, opts Options)
// (http.Handler, error) serves, for GET and HEAD:
//
//   - the content page at the path held in the url column of the row
//     (e.g. /tech/hello-freshet);
//   - list pages /tag/{tag}, /section/{section} and /author/{author}: the
//     newest items (by key, descending; at most Options.ListLimit) whose
//     tags hold tag, whose section or attributes.author is the name;
//   - 404 with a body for any other path (never cached).
//
// A list prefix wins over a content url that starts with it. Every page is
// HTML, or JSON when the Accept header prefers application/json; responses
// say "Vary: Accept". The zero Options gives sensible defaults (see
// [Options]).
//
// # Keys
//
// Every 200 carries the surrogate keys of what it rendered, space-separated,
// in both "xkey" (Varnish's vmod xkey) and "Surrogate-Key" (Fastly-style
// caches). They are the keys of [pipeline.Invalidation.PurgeSet], the
// invalidator's own function, over the fields of what the page shows (so
// there is no second template evaluator, and a key that cannot travel in a
// header is dropped alike):
//
//   - a content page: the templates over the row's fields, as the
//     cdc-ingestor would put them in an event (the mapped columns'
//     values; attributes.<name> from the table's attributes);
//   - a list page: the templates over a change that holds only the list's
//     field (tags = [tag], section, or attributes.author), which is the
//     key any create, update or delete of an item in that list purges
//     (tag:go for /tag/go with the default pipeline), plus the keys of
//     every item listed.
//
// A list page whose field yields no key from the templates (for instance a
// pipeline without a tag:{tags[*]} template) could not be purged when an
// item joins the list, so it is served with "Cache-Control: no-cache".
//
// Values are read as Postgres prints them (the text the cdc-ingestor reads
// from pgoutput), so a key the invalidator purges is exactly a key the
// origin tags. List fields (tags, surrogate_keys) must be array columns.
// A template on version reads the version column; with no version column
// the ingestor uses the commit LSN, which the origin cannot know.
//
// # Caching
//
// A 200 has "Cache-Control: public, max-age=M, s-maxage=S,
// stale-while-revalidate=W" from [Options], and a strong ETag (a hash of
// the body, so HTML and JSON differ); a request whose If-None-Match matches
// gets 304 with the same headers and no body.
//
// Concurrency: the handler is safe for concurrent requests; it keeps no
// state between them besides its metrics.
package origin
