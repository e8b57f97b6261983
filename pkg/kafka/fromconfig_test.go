package kafka

import (
	"testing"

	"github.com/freshet/freshet/pkg/config"
)

func TestFromConfig(t *testing.T) {
	var k config.Kafka
	k.Brokers = []string{"a:9092"}
	k.TLS.Enabled = true
	k.SASL.Mechanism, k.SASL.User, k.SASL.Password = "plain", "u", config.NewSecret("p")
	c := FromConfig(k, "svc")
	if c.ClientID != "svc" || c.Brokers[0] != "a:9092" || !c.TLS.Enabled || c.SASL.Password != "p" || c.SASL.User != "u" {
		t.Errorf("FromConfig = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	k.ClientID = "mine"
	if c := FromConfig(k, "svc"); c.ClientID != "mine" {
		t.Errorf("client id %q, want the variable's", c.ClientID)
	}
}
