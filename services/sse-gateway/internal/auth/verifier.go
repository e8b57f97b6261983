package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen bounds the tokens Verify looks at.
const MaxTokenLen = 8 << 10

// Claims are the claims of a gateway token: the registered ones, plus the
// broadcast channels the token allows.
type Claims struct {
	jwt.RegisteredClaims
	// Channels the holder may subscribe to with ?channels=.
	Channels []string `json:"channels,omitempty"`
}

// Identity is what a valid token grants.
type Identity struct {
	// UserID is the sub claim.
	UserID string
	// Channels the token allows.
	Channels []string
	// Expires is the exp claim.
	Expires time.Time
}

// Allows reports whether the identity may subscribe to channel.
func (id Identity) Allows(channel string) bool {
	for _, c := range id.Channels {
		if c == channel {
			return true
		}
	}
	return false
}

// Verifier checks tokens. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	secret []byte
	parser *jwt.Parser
	http   *http.Client

	mu      sync.Mutex
	keys    keySet
	fetched time.Time // when keys were last loaded (or tried)
}

// NewVerifier loads the JWKS, when one is configured, and returns a Verifier.
// A JWKS that cannot be read or holds no usable key is an error.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg, http: &http.Client{Timeout: 10 * time.Second}}
	var methods []string
	if cfg.HS256Secret.IsSet() {
		v.secret = []byte(cfg.HS256Secret.Reveal())
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	if cfg.JWKS != "" {
		methods = append(methods, jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg())
		if err := v.load(ctx); err != nil {
			return nil, err
		}
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithIssuedAt(),
	)
	return v, nil
}

// Verify checks token and returns the identity it grants, or an error
// wrapping one of the package's sentinels.
func (v *Verifier) Verify(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, ErrMissing
	}
	if len(token) > MaxTokenLen {
		return Identity{}, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLen)
	}
	var claims Claims
	_, err := v.parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		return v.key(ctx, t)
	})
	if err != nil {
		return Identity{}, classify(err)
	}
	if claims.Subject == "" {
		return Identity{}, fmt.Errorf("%w: sub is empty", ErrClaims)
	}
	return Identity{UserID: claims.Subject, Channels: claims.Channels, Expires: claims.ExpiresAt.Time}, nil
}

func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %v", ErrExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("%w: %v", ErrNotYet, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Errorf("%w: %v", ErrAudience, err)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fmt.Errorf("%w: %v", ErrIssuer, err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, jwt.ErrTokenInvalidClaims):
		return fmt.Errorf("%w: %v", ErrClaims, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return fmt.Errorf("%w: %v", ErrSignature, err)
}

// key is the jwt.Keyfunc: the shared secret for HS256, the JWKS key named by
// kid (or the only key of the right type) for RS256 and ES256.
func (v *Verifier) key(ctx context.Context, t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if v.secret == nil {
			return nil, errors.New("HS256 is not enabled")
		}
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	if k := v.lookup(alg, kid); k != nil {
		return k, nil
	}
	if v.refreshOnMiss() {
		_ = v.load(ctx) // a failed refresh keeps the old keys
		if k := v.lookup(alg, kid); k != nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("no %s key with kid %q", alg, kid)
}

func (v *Verifier) lookup(alg, kid string) any {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys.find(alg, kid)
}

// refreshOnMiss reports whether an unknown key id may trigger a fetch: only
// for a URL, and at most once per refresh interval.
func (v *Verifier) refreshOnMiss() bool {
	if !strings.Contains(v.cfg.JWKS, "://") {
		return false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return time.Since(v.fetched) >= v.cfg.JWKSRefresh || len(v.keys) == 0
}

// Run refreshes a JWKS URL every JWKSRefresh until ctx is done, and hands a
// failed refresh to report (the previous keys stay in use). Without a URL it
// waits for ctx.
func (v *Verifier) Run(ctx context.Context, report func(error)) error {
	if !strings.Contains(v.cfg.JWKS, "://") {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(v.cfg.JWKSRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := v.load(ctx); err != nil && ctx.Err() == nil && report != nil {
				report(err) // the previous keys stay; the next tick retries
			}
		}
	}
}

func (v *Verifier) load(ctx context.Context) error {
	v.mu.Lock()
	v.fetched = time.Now()
	v.mu.Unlock()
	var data []byte
	var err error
	if strings.Contains(v.cfg.JWKS, "://") {
		data, err = v.fetch(ctx)
	} else {
		data, err = os.ReadFile(v.cfg.JWKS)
	}
	if err != nil {
		return fmt.Errorf("load JWKS %s: %w", v.cfg.JWKS, err)
	}
	ks, err := ParseJWKS(data)
	if err != nil {
		return fmt.Errorf("load JWKS %s: %w", v.cfg.JWKS, err)
	}
	v.mu.Lock()
	v.keys = ks
	v.mu.Unlock()
	return nil
}

func (v *Verifier) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKS, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return readLimited(resp.Body, maxJWKSBytes)
}
