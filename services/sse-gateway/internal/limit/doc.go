// Package limit holds the gateway's admission limits: Counter caps
// concurrent things per key (connections per user, per IP, in total), and
// Rate is a token bucket per key (connects per IP, beacons per IP and per
// session).
//
// Both are safe for concurrent use and bound their own memory: idle keys are
// dropped, and a Rate holds at most MaxKeys buckets (past that, new keys are
// refused until idle ones expire, which fails closed under a flood of
// addresses).
package limit
