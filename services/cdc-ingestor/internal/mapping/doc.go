// Package mapping turns rows of captured tables, as pgoutput sends them (text
// values, some unchanged TOAST values left out), into Freshet events, as the
// pipeline file's capture section declares: which column becomes which field
// of a ContentChange or a UserProfile, and which columns make the key.
//
// Nothing about a table is coded here: a Plan is built from the pipeline's
// table and the relation Postgres described, and is rebuilt whenever a new
// relation message arrives (a column added while streaming).
//
// Values the source did not send are never shown as data: an unchanged TOAST
// value is filled from the old row when the table has REPLICA IDENTITY FULL,
// and otherwise left at its default and named in the event's missing_fields,
// as are the non-key columns of a delete without the old row.
//
// Concurrency: a Plan is immutable after NewPlan and safe for concurrent
// use; the parse functions keep no state.
package mapping
