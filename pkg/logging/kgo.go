package logging

import (
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kzap"
	"go.uber.org/zap"
)

// Kgo adapts l for franz-go's kgo.WithLogger, through the kzap plugin. The
// client logs at the levels l enables; franz-go's info level notes
// connections, metadata changes, group joins and partition assignments, its
// debug level every request. l is used as given: name it first
// (logging.Named(log, "kafka")) to tell the client's lines apart.
func Kgo(l *zap.Logger) kgo.Logger { return kzap.New(l) }
