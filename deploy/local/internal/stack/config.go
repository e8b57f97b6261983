package stack

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/freshet/freshet/pkg/config"
)

// Config is the local stack's configuration, read from FRESHET_LOCAL_*
// variables (and FRESHET_KAFKA_BROKERS). Every port is on 127.0.0.1.
type Config struct {
	// Dir holds everything the stack keeps: postgres/, clickhouse/,
	// varnish/, kafka/, bin/, logs/ and secrets.env. Default ".freshet".
	Dir string `env:"LOCAL_DIR" default:".freshet" help:"Folder of the stack's data, logs, binaries and generated secrets; it survives restarts (delete it to start over)."`
	// PostgresPort default 5432.
	PostgresPort int `env:"LOCAL_POSTGRES_PORT" default:"5432" help:"Postgres port."`
	// ClickHouseTCPPort default 9000 (native protocol).
	ClickHouseTCPPort int `env:"LOCAL_CLICKHOUSE_TCP_PORT" default:"9000" help:"ClickHouse native protocol port."`
	// ClickHouseHTTPPort default 8123.
	ClickHouseHTTPPort int `env:"LOCAL_CLICKHOUSE_HTTP_PORT" default:"8123" help:"ClickHouse HTTP port."`
	// VarnishPort default 6081.
	VarnishPort int `env:"LOCAL_VARNISH_PORT" default:"6081" help:"Varnish (edge cache) HTTP port."`
	// VarnishAdminPort default 6082.
	VarnishAdminPort int `env:"LOCAL_VARNISH_ADMIN_PORT" default:"6082" help:"Varnish management (varnishadm) port."`
	// OriginPort default 8090: the backend Varnish forwards to (the
	// reference origin).
	OriginPort int `env:"LOCAL_ORIGIN_PORT" default:"8090" help:"Port of the reference origin, the backend behind Varnish."`
	// KafkaPort default 9092: the embedded broker's port.
	KafkaPort int `env:"LOCAL_KAFKA_PORT" default:"9092" help:"Port of the embedded Kafka-protocol broker."`
	// KafkaBrokers, when set, points the services at an existing Kafka
	// cluster and the embedded broker is not started.
	KafkaBrokers []string `env:"KAFKA_BROKERS" help:"Seed brokers of an existing Kafka cluster; empty starts the embedded broker."`
	// Partitions of topics the embedded broker creates on its own. Default 12.
	Partitions int `env:"LOCAL_KAFKA_PARTITIONS" default:"12" help:"Default partition count of the embedded broker."`
	// IngestPort default 8080: the cdc-ingestor's HTTP ingest.
	IngestPort int `env:"LOCAL_INGEST_PORT" default:"8080" help:"Port of the cdc-ingestor's HTTP ingest (POST /v1/events)."`
	// GatewayPort default 8081: the sse-gateway.
	GatewayPort int `env:"LOCAL_GATEWAY_PORT" default:"8081" help:"Port of the sse-gateway (GET /v1/stream, POST /v1/rum)."`
	// AdminBasePort default 9101: the services' admin listeners take
	// consecutive ports from here, in name order.
	AdminBasePort int `env:"LOCAL_ADMIN_BASE_PORT" default:"9101" help:"First port of the services' admin listeners (/healthz, /readyz, /metrics), one per service in name order."`
	// Services to run: "all" (default), "none", or a comma-separated list
	// of names under services/.
	Services []string `env:"LOCAL_SERVICES" default:"all" help:"Services to run: all, none, or a comma-separated list of names under services/."`
	// Install missing Debian packages with apt-get when running as root.
	// Default true.
	Install bool `env:"LOCAL_INSTALL" default:"true" help:"Install missing Debian packages with apt-get when running as root; otherwise print the command."`
	// ReadyTimeout bounds the wait for each part. Default 30s.
	ReadyTimeout time.Duration `env:"LOCAL_READY_TIMEOUT" default:"30s" help:"How long each part may take to become ready."`
}

// Validate checks ports and the service selection.
func (c *Config) Validate() error {
	var errs []error
	ports := map[string]int{
		"PostgresPort": c.PostgresPort, "ClickHouseTCPPort": c.ClickHouseTCPPort,
		"ClickHouseHTTPPort": c.ClickHouseHTTPPort, "VarnishPort": c.VarnishPort,
		"VarnishAdminPort": c.VarnishAdminPort, "OriginPort": c.OriginPort,
		"KafkaPort": c.KafkaPort, "IngestPort": c.IngestPort, "GatewayPort": c.GatewayPort,
		"AdminBasePort": c.AdminBasePort,
	}
	for field, p := range ports {
		if p <= 0 || p > 65535 {
			errs = append(errs, config.FieldErrorf(field, "must be a port between 1 and 65535, got %d", p))
		}
	}
	if c.Dir == "" {
		errs = append(errs, config.FieldErrorf("Dir", "must name a folder"))
	}
	if c.Partitions <= 0 {
		errs = append(errs, config.FieldErrorf("Partitions", "must be positive, got %d", c.Partitions))
	}
	if c.ReadyTimeout <= 0 {
		errs = append(errs, config.FieldErrorf("ReadyTimeout", "must be positive, got %s", c.ReadyTimeout))
	}
	for _, s := range c.Services {
		if s == "" || strings.ContainsAny(s, "/. ") {
			errs = append(errs, config.FieldErrorf("Services", "%q is not a service name (all, none, or names under services/)", s))
		}
	}
	return errors.Join(errs...)
}

// embeddedBroker reports whether the stack starts its own broker.
func (c *Config) embeddedBroker() bool { return len(c.KafkaBrokers) == 0 }

// brokers returns the seed brokers the services use.
func (c *Config) brokers() []string {
	if c.embeddedBroker() {
		return []string{fmt.Sprintf("127.0.0.1:%d", c.KafkaPort)}
	}
	return c.KafkaBrokers
}

// PortsInUseError lists the stack's ports that something else holds.
type PortsInUseError struct {
	Ports []PortUse
}

// PortUse is one port of the stack: what listens there and the variable
// that moves it.
type PortUse struct {
	Port     int
	What     string
	Variable string
}

func (e *PortsInUseError) Error() string {
	var b strings.Builder
	b.WriteString("ports in use: ")
	for i, p := range e.Ports {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d (%s: %s)", p.Port, p.What, p.Variable)
	}
	b.WriteString(". Is another Freshet stack or server running? Stop it, or set those variables to free ports")
	return b.String()
}

// ports returns every port the stack listens on with the services names.
func (c *Config) ports(services []string) []PortUse {
	ps := []PortUse{
		{c.PostgresPort, "Postgres", "FRESHET_LOCAL_POSTGRES_PORT"},
		{c.ClickHouseTCPPort, "ClickHouse native", "FRESHET_LOCAL_CLICKHOUSE_TCP_PORT"},
		{c.ClickHouseHTTPPort, "ClickHouse HTTP", "FRESHET_LOCAL_CLICKHOUSE_HTTP_PORT"},
		{c.VarnishPort, "Varnish", "FRESHET_LOCAL_VARNISH_PORT"},
		{c.VarnishAdminPort, "Varnish admin", "FRESHET_LOCAL_VARNISH_ADMIN_PORT"},
	}
	if c.embeddedBroker() {
		ps = append(ps, PortUse{c.KafkaPort, "the embedded Kafka broker", "FRESHET_LOCAL_KAFKA_PORT or FRESHET_KAFKA_BROKERS"})
	}
	for i, name := range services {
		switch name {
		case "cdc-ingestor":
			ps = append(ps, PortUse{c.IngestPort, "HTTP ingest", "FRESHET_LOCAL_INGEST_PORT"})
		case "sse-gateway":
			ps = append(ps, PortUse{c.GatewayPort, "the sse-gateway", "FRESHET_LOCAL_GATEWAY_PORT"})
		case "origin":
			ps = append(ps, PortUse{c.OriginPort, "the reference origin", "FRESHET_LOCAL_ORIGIN_PORT"})
		}
		ps = append(ps, PortUse{c.AdminBasePort + i, name + " admin", "FRESHET_LOCAL_ADMIN_BASE_PORT"})
	}
	return ps
}
