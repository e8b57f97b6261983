package auth

import "errors"

// Sentinels wrapped by Verify's errors. Code gives the stable string a client
// sees in the JSON body of the 401.
var (
	ErrMissing   = errors.New("no token")
	ErrMalformed = errors.New("malformed token")
	ErrSignature = errors.New("bad signature or unknown key")
	ErrExpired   = errors.New("token expired")
	ErrNotYet    = errors.New("token not valid yet")
	ErrAudience  = errors.New("wrong audience")
	ErrIssuer    = errors.New("wrong issuer")
	ErrClaims    = errors.New("missing or bad claims")
)

// Code returns the error code of err for a client: "missing_token",
// "malformed_token", "invalid_signature", "token_expired",
// "token_not_yet_valid", "wrong_audience", "wrong_issuer", "invalid_claims",
// or "invalid_token" for anything else.
func Code(err error) string {
	switch {
	case errors.Is(err, ErrMissing):
		return "missing_token"
	case errors.Is(err, ErrMalformed):
		return "malformed_token"
	case errors.Is(err, ErrSignature):
		return "invalid_signature"
	case errors.Is(err, ErrExpired):
		return "token_expired"
	case errors.Is(err, ErrNotYet):
		return "token_not_yet_valid"
	case errors.Is(err, ErrAudience):
		return "wrong_audience"
	case errors.Is(err, ErrIssuer):
		return "wrong_issuer"
	case errors.Is(err, ErrClaims):
		return "invalid_claims"
	}
	return "invalid_token"
}
