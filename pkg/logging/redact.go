package logging

import (
	"crypto/sha256"
	"encoding/hex"

	"go.uber.org/zap"
)

// RedactedText is what [Redacted] writes in place of a secret.
const RedactedText = "[redacted]"

// Fingerprint returns a short, stable fingerprint of a secret: "sha256:"
// followed by the first 12 hexadecimal digits of its SHA-256, or "" for an
// empty secret. Two log lines with the same fingerprint saw the same token;
// the token cannot be recovered from it.
//
// Use it only for high-entropy secrets (JWTs, API keys, session ids): a
// fingerprint of a short password can be found by trying candidates. For
// passwords use [Redacted].
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// Token is a field that logs a token only as its [Fingerprint], under key.
// An empty token logs as "". Use it for JWTs, API keys and other
// high-entropy secrets that an operator needs to tell apart.
func Token(key, token string) zap.Field { return zap.String(key, Fingerprint(token)) }

// Redacted is a field that says a secret was present without telling
// anything about it: key is written with [RedactedText].
func Redacted(key string) zap.Field { return zap.String(key, RedactedText) }
