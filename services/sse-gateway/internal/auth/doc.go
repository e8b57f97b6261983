// Package auth authenticates the gateway's clients with short-lived JWTs.
//
// A Verifier checks a token's signature (HS256 with a shared secret, RS256 or
// ES256 with the keys of a JWKS file or URL), requires exp, checks iss and
// aud, and returns the Identity it grants: the user id (sub) and the
// broadcast channels the token allows (the "channels" claim). Errors wrap one
// of the sentinels (ErrMissing, ErrExpired, ErrAudience, ...), each with a
// stable Code for the JSON body of a 401.
//
// FromRequest finds the token in the Authorization header, a cookie or the
// token query parameter. Tokens are never logged: log Fingerprint (see
// pkg/logging.Token) if anything.
//
// Mint makes an HS256 token, for the gateway's token command and tests.
//
// A Verifier is safe for concurrent use; a JWKS URL is fetched again when a
// token names a key id it does not know (at most once per refresh interval)
// and when its keys are older than the refresh interval.
package auth
