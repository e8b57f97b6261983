package logging

import (
	"fmt"
	"github.com/freshet/freshet/pkg/config"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Formats accepted in [Config.Format].
const (
	// FormatJSON writes one JSON object per line: the format for production,
	// log shippers and jq.
	FormatJSON = "json"
	// FormatConsole writes tab-separated, human-readable lines: the format for
	// a developer's terminal.
	FormatConsole = "console"
)

// Config says how [New] builds a logger. It is plain data; the zero value is
// valid and means JSON at info level.
type Config struct {
	// Level is the minimum level written: debug, info, warn or error
	// (case-insensitive). Empty means info.
	Level string
	// Format is FormatJSON or FormatConsole. Empty means FormatJSON.
	Format string
}

// ParseLevel parses a level name as [Config.Level] accepts it. Empty means
// info. The error names the value that was refused.
func ParseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return zapcore.InfoLevel, fmt.Errorf("logging: level %q: want debug, info, warn or error", s)
}

// New returns a logger writing to standard error as cfg says. Entries carry
// the keys ts (RFC 3339 with nanoseconds, UTC), level, logger (the name given
// by zap's Named), caller, msg, and stacktrace for errors. Repeated identical
// messages are sampled as in zap's production preset: after the first 100 in a
// second, one in 100 is written, so that a flood of identical errors cannot
// starve the process.
//
// The error names the field and the value that was refused.
func New(cfg Config) (*zap.Logger, error) {
	return build(cfg, zapcore.Lock(os.Stderr))
}

func build(cfg Config, out zapcore.WriteSyncer) (*zap.Logger, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	enc := zapcore.EncoderConfig{
		TimeKey:        "ts",
		LevelKey:       "level",
		NameKey:        "logger",
		CallerKey:      "caller",
		FunctionKey:    zapcore.OmitKey,
		MessageKey:     "msg",
		StacktraceKey:  "stacktrace",
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     utcRFC3339Nano,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
	}
	var encoder zapcore.Encoder
	switch strings.ToLower(strings.TrimSpace(cfg.Format)) {
	case "", FormatJSON:
		encoder = zapcore.NewJSONEncoder(enc)
	case FormatConsole:
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, fmt.Errorf("logging: format %q: want %s or %s", cfg.Format, FormatJSON, FormatConsole)
	}
	core := zapcore.NewCore(encoder, out, zap.NewAtomicLevelAt(level))
	core = zapcore.NewSamplerWithOptions(core, time.Second, 100, 100)
	return zap.New(core,
		zap.AddCaller(),
		zap.AddStacktrace(zapcore.ErrorLevel),
		zap.ErrorOutput(zapcore.Lock(os.Stderr)),
	), nil
}

func utcRFC3339Nano(t time.Time, e zapcore.PrimitiveArrayEncoder) {
	e.AppendString(t.UTC().Format(time.RFC3339Nano))
}

// ForService returns New's logger for a service's shared log settings
// (FRESHET_LOG_LEVEL, FRESHET_LOG_FORMAT), every entry carrying the
// service field with name.
func ForService(name string, c config.Log) (*zap.Logger, error) {
	log, err := New(Config{Level: c.Level, Format: c.Format})
	if err != nil {
		return nil, err
	}
	return log.With(Service(name)), nil
}
