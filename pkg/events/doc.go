// Package events holds Freshet's events as typed Go values: one struct per
// Avro schema of schemas/avro (ContentChange, UserProfile, Delivery,
// PurgeAudit, RumBeacon, LatencySample) and the records they share (Source,
// Trace, ContentProjection), with conversions to and from goavro's native
// form, which pkg/codec encodes and decodes.
//
// Conventions of the conversions:
//   - Timestamps are time.Time at microsecond precision (finer parts are
//     dropped on encoding); a zero time.Time stands for null where the schema
//     allows null (ContentChange.PublishedAt, Delivery.Deadline, ...).
//   - Nullable strings are *string where null and "" differ (ContentChange.Body);
//     PurgeAudit.Error maps "" to null.
//   - Empty arrays and maps decode as nil.
//   - Postgres LSNs and transaction ids are uint64, carried in Avro longs.
//
// ID makes the deterministic event ids the schemas document.
//
// Values are plain data: safe to share between goroutines as long as none
// of them modifies it. The functions of this package are safe for
// concurrent use.
package events
