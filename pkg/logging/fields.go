package logging

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The field names shared by every service. Use the constructors below; the
// constants are for code that builds fields another way (zap.Any, tests, log
// queries).
const (
	KeyTopic     = "topic"     // Kafka topic name
	KeyPartition = "partition" // Kafka partition number
	KeyOffset    = "offset"    // Kafka offset
	KeyUserID    = "user_id"   // application user id (never a token, never an IP)
	KeyEventID   = "event_id"  // Freshet event id
	KeyTarget    = "target"    // purge target name (a cache, a CDN account)
	KeyComponent = "component" // part of a service: consumer, http, purger...
	KeyService   = "service"   // binary name: invalidator, sse-gateway...
	KeyLSN       = "lsn"       // Postgres log sequence number, as Postgres writes it
	KeyError     = "error"     // error text
)

// Topic is the field for a Kafka topic name.
func Topic(topic string) zap.Field { return zap.String(KeyTopic, topic) }

// Partition is the field for a Kafka partition.
func Partition(p int32) zap.Field { return zap.Int32(KeyPartition, p) }

// Offset is the field for a Kafka offset.
func Offset(o int64) zap.Field { return zap.Int64(KeyOffset, o) }

// UserID is the field for an application user id. Never pass a token, a
// session secret or an IP address.
func UserID(id string) zap.Field { return zap.String(KeyUserID, id) }

// EventID is the field for a Freshet event id.
func EventID(id string) zap.Field { return zap.String(KeyEventID, id) }

// Target is the field for a purge target's name.
func Target(name string) zap.Field { return zap.String(KeyTarget, name) }

// Component is the field for the part of a service that logs.
func Component(name string) zap.Field { return zap.String(KeyComponent, name) }

// Service is the field for the name of the service binary.
func Service(name string) zap.Field { return zap.String(KeyService, name) }

// LSN is the field for a Postgres log sequence number, written as Postgres
// writes it (two hexadecimal halves, "16/B374D848") so that it can be pasted
// into SQL.
func LSN(lsn uint64) zap.Field { return zap.String(KeyLSN, FormatLSN(lsn)) }

// FormatLSN writes lsn as Postgres does: "16/B374D848".
func FormatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", uint32(lsn>>32), uint32(lsn)) }

// Error is the field for an error, under the key "error". A nil error adds no
// field. It is zap.Error, named here so that every field comes from one place.
func Error(err error) zap.Field { return zap.Error(err) }

// Record adds the topic, partition and offset of r as three top-level
// fields. A nil record adds nothing. The key and value are never logged: they
// may hold personal data.
func Record(r *kgo.Record) zap.Field {
	if r == nil {
		return zap.Skip()
	}
	return zap.Inline(recordFields{r.Topic, r.Partition, r.Offset})
}

type recordFields struct {
	topic     string
	partition int32
	offset    int64
}

func (r recordFields) MarshalLogObject(e zapcore.ObjectEncoder) error {
	e.AddString(KeyTopic, r.topic)
	e.AddInt32(KeyPartition, r.partition)
	e.AddInt64(KeyOffset, r.offset)
	return nil
}

// Named returns l named name (zap's dotted logger name) with a component
// field, the way every component of a service gets its logger:
//
//	consumerLog := logging.Named(log, "consumer")
func Named(l *zap.Logger, name string) *zap.Logger {
	return l.Named(name).With(Component(name))
}
