// Package ingest is the ingestor's HTTP API for apps that send content
// events directly: POST /v1/events.
//
// Contract:
//   - Authentication: an API key in "Authorization: Bearer <key>" or
//     "X-API-Key: <key>". Keys are configured as name:key pairs; only the
//     name is ever logged or put in events (source.db).
//   - Body: one JSON object, or a JSON array of them (a batch), each with the
//     fields of the ContentChange schema except source and trace; at most
//     MaxBody bytes and MaxBatch events. Every event is validated against the
//     Avro schema before any is produced: one invalid event rejects the whole
//     request, so that nothing reaches Kafka from it.
//   - Rate: a token bucket per API key, one token per event.
//   - Answer: 202 with the event ids only after Kafka acked every event of
//     the request; 4xx with a JSON body {"error": ..., "details": [...]}
//     saying what is wrong; 503 when Kafka did not ack in time (send again:
//     the events keep their ids).
//
// Concurrency: the handler is safe for concurrent requests.
package ingest
