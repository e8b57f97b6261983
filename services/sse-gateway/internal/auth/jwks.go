package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
)

const maxJWKSBytes = 1 << 20

// keySet holds the usable keys of a JWKS.
type keySet []jwk

type jwk struct {
	kid string
	alg string // "RS256" or "ES256"
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

func (ks keySet) find(alg, kid string) any {
	var only any
	n := 0
	for _, k := range ks {
		if k.alg != alg {
			continue
		}
		if kid != "" && k.kid == kid {
			return k.key
		}
		only = k.key
		n++
	}
	if kid == "" && n == 1 {
		return only
	}
	return nil
}

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads a JSON Web Key Set and keeps its RSA keys (for RS256, at
// least 2048 bits) and EC P-256 keys (for ES256). Keys marked for another use
// than "sig" or another algorithm are skipped; a set with no usable key is an
// error.
func ParseJWKS(data []byte) (keySet, error) {
	var doc struct {
		Keys []rawJWK `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var ks keySet
	var errs []error
	for i, r := range doc.Keys {
		if r.Use != "" && r.Use != "sig" {
			continue
		}
		k, err := r.parse()
		if err != nil {
			errs = append(errs, fmt.Errorf("key %d (kid %q): %w", i, r.Kid, err))
			continue
		}
		if k.key != nil {
			ks = append(ks, k)
		}
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("JWKS has no usable RS256 or ES256 key: %w", errors.Join(errs...))
	}
	return ks, nil
}

func (r rawJWK) parse() (jwk, error) {
	switch r.Kty {
	case "RSA":
		if r.Alg != "" && r.Alg != "RS256" {
			return jwk{}, nil
		}
		n, err := b64int(r.N)
		if err != nil {
			return jwk{}, fmt.Errorf("n: %w", err)
		}
		e, err := b64int(r.E)
		if err != nil {
			return jwk{}, fmt.Errorf("e: %w", err)
		}
		if n.BitLen() < 2048 {
			return jwk{}, fmt.Errorf("RSA key of %d bits, want at least 2048", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return jwk{}, errors.New("bad RSA exponent")
		}
		return jwk{kid: r.Kid, alg: "RS256", key: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
	case "EC":
		if (r.Alg != "" && r.Alg != "ES256") || r.Crv != "P-256" {
			return jwk{}, nil
		}
		x, err := base64.RawURLEncoding.DecodeString(r.X)
		if err != nil || len(x) != 32 {
			return jwk{}, errors.New("x: want 32 bytes of base64url")
		}
		y, err := base64.RawURLEncoding.DecodeString(r.Y)
		if err != nil || len(y) != 32 {
			return jwk{}, errors.New("y: want 32 bytes of base64url")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(ellipticP256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return jwk{}, err
		}
		return jwk{kid: r.Kid, alg: "ES256", key: pub}, nil
	}
	return jwk{}, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 || len(b) > 1024 {
		return nil, errors.New("want base64url of 1 to 1024 bytes")
	}
	return new(big.Int).SetBytes(b), nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}
