package kafka

import "github.com/freshet/freshet/pkg/config"

// FromConfig returns the Config of the shared FRESHET_KAFKA_* variables
// (config.Kafka). clientID is used when FRESHET_KAFKA_CLIENT_ID is empty:
// services pass their name. The SASL password is revealed into the plain
// Config, which never logs it (see SASLConfig).
func FromConfig(k config.Kafka, clientID string) Config {
	if k.ClientID != "" {
		clientID = k.ClientID
	}
	return Config{
		Brokers:  k.Brokers,
		ClientID: clientID,
		TLS: TLSConfig{
			Enabled: k.TLS.Enabled, CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile,
			KeyFile: k.TLS.KeyFile, InsecureSkipVerify: k.TLS.InsecureSkipVerify,
		},
		SASL:              SASLConfig{Mechanism: k.SASL.Mechanism, User: k.SASL.User, Password: k.SASL.Password.Reveal()},
		SchemaRegistryURL: k.SchemaRegistryURL,
	}
}
