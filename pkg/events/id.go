package events

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
)

// ID returns a deterministic event id: the lowercase hex of the first 16
// bytes of the SHA-256 of the parts, each prefixed with its length so that
// ("ab", "c") and ("a", "bc") differ. The same parts always give the same id,
// so an event re-sent after a crash keeps its id and consumers can drop the
// duplicate. See each schema's event_id doc for the parts it uses.
func ID(parts ...string) string {
	h := sha256.New()
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		h.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// ChangeID is the event id of a row change: ID(db, table, lsn, key).
func ChangeID(db, table string, lsn uint64, key string) string {
	return ID(db, table, strconv.FormatUint(lsn, 10), key)
}
