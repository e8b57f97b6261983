package rum

import (
	"errors"

	"github.com/freshet/freshet/pkg/config"
)

// MinKeyLen is the shortest hash key accepted.
const MinKeyLen = 16

// Config configures POST /v1/rum. Variables FRESHET_RUM_*.
type Config struct {
	// HashKey is the HMAC-SHA256 key of the user hash in beacons. Required,
	// at least MinKeyLen bytes; never logged.
	HashKey config.Secret `env:"HASH_KEY" help:"Key of the keyed hash (HMAC-SHA256) of user ids in beacons; at least 16 bytes; never logged. Required."`
	// MaxBytes bounds a beacon's body. Default 16KiB.
	MaxBytes config.ByteSize `env:"MAX_BYTES" default:"16KiB" help:"Largest beacon body (413 past it)."`
	// RatePerIP is the beacons per second allowed per client IP, burst
	// BurstPerIP. Default 5/s, burst 20.
	RatePerIP float64 `env:"RATE_PER_IP" default:"5" help:"Beacons per second per client IP (429 past it); 0 disables."`
	// BurstPerIP: see RatePerIP.
	BurstPerIP int `env:"BURST_PER_IP" default:"20" help:"Burst of beacons per client IP."`
	// RatePerSession is the beacons per second allowed per session, burst
	// BurstPerSession. Default 1/s, burst 10.
	RatePerSession float64 `env:"RATE_PER_SESSION" default:"1" help:"Beacons per second per session id (429 past it); 0 disables."`
	// BurstPerSession: see RatePerSession.
	BurstPerSession int `env:"BURST_PER_SESSION" default:"10" help:"Burst of beacons per session id."`
	// RegionHeader names a header the edge sets to the client's region;
	// empty means beacons carry no region.
	RegionHeader string `env:"REGION_HEADER" help:"Header the edge sets to the client's region (never derived from the IP here); empty: no region."`
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if !c.HashKey.IsSet() {
		errs = append(errs, config.FieldErrorf("HashKey", "required: beacons carry a keyed hash of the user id, never the id"))
	} else if len(c.HashKey.Reveal()) < MinKeyLen {
		errs = append(errs, config.FieldErrorf("HashKey", "too short: at least %d bytes", MinKeyLen))
	}
	if c.MaxBytes <= 0 || c.MaxBytes > config.MiB {
		errs = append(errs, config.FieldErrorf("MaxBytes", "must be between 1 byte and 1MiB"))
	}
	if c.RatePerIP < 0 || c.RatePerSession < 0 || c.BurstPerIP < 0 || c.BurstPerSession < 0 {
		errs = append(errs, config.FieldErrorf("RatePerIP", "rates must not be negative"))
	}
	return errors.Join(errs...)
}
