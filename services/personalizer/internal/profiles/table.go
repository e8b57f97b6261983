package profiles

import (
	"slices"
	"sync/atomic"
)

// Key is an interned string: a tag, a follow key ("author:7"), a segment,
// a region or a locale. The zero Key stands for no key.
type Key uint32

// NoKey is the Key of an empty or unknown string.
const NoKey Key = 0

// Slot identifies a user in a Table. Slots of deleted users are reused.
type Slot uint32

// Rule names an inverted index.
type Rule uint8

// The inverted indexes: the rules that make a user a candidate.
const (
	RuleInterest Rule = iota
	RuleFollow
	RuleSegment
	numRules
)

// String returns the rule's name, as written in a delivery's reasons.
func (r Rule) String() string {
	switch r {
	case RuleInterest:
		return "interest"
	case RuleFollow:
		return "follow"
	case RuleSegment:
		return "segment"
	}
	return "unknown"
}

// Profile is one user's profile as the table takes it.
type Profile struct {
	// UserID is the application's user id.
	UserID string
	// Partition is the user.profiles partition the profile was read from:
	// the partition of content.deliveries the user's deliveries go to.
	Partition int32
	// Locale and Region of the user; empty when unknown.
	Locale, Region string
	// Interests are tags with weights.
	Interests []Interest
	// Follows are follow keys ("author:7", "section:sport", "tag:go").
	Follows []string
	// Segments are audience segments.
	Segments []string
}

// Interest is a tag a user cares about, and how much.
type Interest struct {
	Tag    string
	Weight float64
}

// user is a profile in the table's compact form.
type user struct {
	id        string
	part      int32
	alive     bool
	nInterest uint16
	nFollow   uint16
	locale    Key
	region    Key
	// keys holds the interest keys, then the follow keys, then the
	// segment keys, each run sorted and without duplicates.
	keys    []Key
	weights []float32 // interest weights, parallel to the interest run
}

func (u *user) run(r Rule) []Key {
	nI, nF := int(u.nInterest), int(u.nFollow)
	switch r {
	case RuleInterest:
		return u.keys[:nI]
	case RuleFollow:
		return u.keys[nI : nI+nF]
	default:
		return u.keys[nI+nF:]
	}
}

// postings is one inverted index entry: the slots of the users holding a key
// (plus stale slots, see the package doc).
type postings struct {
	slots []Slot
	stale int
}

// Table holds profiles and their inverted indexes. See the package doc.
type Table struct {
	keys    map[string]Key
	names   []string // by Key; names[0] = ""
	users   []user
	free    []Slot
	byID    map[string]Slot
	index   [numRules][]postings // by Key
	n       atomic.Int64
	perPart map[int32]int
}

// New returns an empty table; sizeHint is the expected number of users.
func New(sizeHint int) *Table {
	return &Table{
		keys:    make(map[string]Key),
		names:   []string{""},
		users:   make([]user, 0, sizeHint),
		byID:    make(map[string]Slot, sizeHint),
		perPart: make(map[int32]int),
	}
}

// Reserve makes room for n more profiles, so that a restore of a known size
// does not grow the table step by step.
func (t *Table) Reserve(n int) {
	t.users = slices.Grow(t.users, n)
	if len(t.byID) == 0 {
		t.byID = make(map[string]Slot, n)
	}
}

// Len returns the number of profiles. It is safe to call from any goroutine.
func (t *Table) Len() int { return int(t.n.Load()) }

// PartitionLen returns the number of profiles of a partition.
func (t *Table) PartitionLen(p int32) int { return t.perPart[p] }

// Keys returns the number of interned keys.
func (t *Table) Keys() int { return len(t.names) - 1 }

// Lookup returns the Key of s, or NoKey when no profile ever held s. It never
// interns: strings from content changes must not grow the table.
func (t *Table) Lookup(s string) Key {
	if s == "" {
		return NoKey
	}
	return t.keys[s]
}

// Name returns the string of a Key.
func (t *Table) Name(k Key) string {
	if int(k) >= len(t.names) {
		return ""
	}
	return t.names[k]
}

func (t *Table) intern(s string) Key {
	if s == "" {
		return NoKey
	}
	if k, ok := t.keys[s]; ok {
		return k
	}
	k := Key(len(t.names))
	t.names = append(t.names, s)
	t.keys[s] = k
	return k
}

// Upsert sets the profile of p.UserID, replacing any previous one, and moves
// the user to p.Partition.
func (t *Table) Upsert(p Profile) {
	slot, exists := t.byID[p.UserID]
	var old user
	if exists {
		old = t.users[slot]
		t.perPart[old.part]--
	} else {
		slot = t.alloc()
		t.n.Add(1)
	}
	u := t.compact(p)
	if exists {
		u.id = old.id // keep the string the map holds
	}
	t.users[slot] = u
	t.byID[u.id] = slot
	t.perPart[p.Partition]++
	for r := RuleInterest; r < numRules; r++ {
		t.reindex(r, slot, oldRun(exists, &old, r), u.run(r))
	}
}

func oldRun(exists bool, u *user, r Rule) []Key {
	if !exists {
		return nil
	}
	return u.run(r)
}

// compact converts p to its table form, interning its keys. Interests of
// the same tag add up.
func (t *Table) compact(p Profile) user {
	follows := t.internSet(p.Follows)
	segments := t.internSet(p.Segments)
	type kw struct {
		k Key
		w float64
	}
	var buf [16]kw
	ins := buf[:0]
	for _, in := range p.Interests {
		if k := t.intern(in.Tag); k != NoKey {
			ins = append(ins, kw{k, in.Weight})
		}
	}
	slices.SortFunc(ins, func(a, b kw) int { return int(a.k) - int(b.k) })
	n := 0
	for i := range ins {
		if n > 0 && ins[n-1].k == ins[i].k {
			ins[n-1].w += ins[i].w
			continue
		}
		ins[n] = ins[i]
		n++
	}
	ins = ins[:min(n, MaxKeysPerRule)]
	keys := make([]Key, len(ins), len(ins)+len(follows)+len(segments))
	weights := make([]float32, len(ins))
	for i, x := range ins {
		keys[i], weights[i] = x.k, float32(x.w)
	}
	keys = append(keys, follows...)
	keys = append(keys, segments...)
	return user{
		id:        p.UserID,
		part:      p.Partition,
		alive:     true,
		nInterest: uint16(len(ins)),
		nFollow:   uint16(len(follows)),
		locale:    t.intern(p.Locale),
		region:    t.intern(p.Region),
		keys:      keys,
		weights:   weights,
	}
}

func (t *Table) internSet(ss []string) []Key {
	if len(ss) == 0 {
		return nil
	}
	ks := make([]Key, 0, len(ss))
	for _, s := range ss {
		if k := t.intern(s); k != NoKey {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	return ks[:min(len(ks), MaxKeysPerRule)]
}

// MaxKeysPerRule bounds the interests, follows and segments kept of one
// profile; a profile with more keeps the first (by key order).
const MaxKeysPerRule = 1<<16 - 1

// reindex adds slot to the postings of the keys in now but not in before,
// and counts the postings of keys in before but not in now as stale.
func (t *Table) reindex(r Rule, slot Slot, before, now []Key) {
	for _, k := range now {
		if _, found := slices.BinarySearch(before, k); !found {
			t.post(r, k, slot)
		}
	}
	for _, k := range before {
		if _, found := slices.BinarySearch(now, k); !found {
			t.unpost(r, k)
		}
	}
}

func (t *Table) post(r Rule, k Key, slot Slot) {
	idx := t.index[r]
	if int(k) >= len(idx) {
		idx = slices.Grow(idx, int(k)+1-len(idx))[:int(k)+1]
		t.index[r] = idx
	}
	idx[k].slots = append(idx[k].slots, slot)
}

func (t *Table) unpost(r Rule, k Key) {
	pl := &t.index[r][k]
	pl.stale++
	if pl.stale > 16 && pl.stale > len(pl.slots)/2 {
		t.compactPostings(r, k)
	}
}

// compactPostings drops the stale and duplicate postings of k.
func (t *Table) compactPostings(r Rule, k Key) {
	pl := &t.index[r][k]
	kept := pl.slots[:0]
	for _, s := range pl.slots {
		if t.Holds(s, r, k) {
			kept = append(kept, s)
		}
	}
	slices.Sort(kept)
	kept = slices.Compact(kept)
	clear(pl.slots[len(kept):])
	pl.slots = slices.Clip(kept)
	pl.stale = 0
}

func (t *Table) alloc() Slot {
	if n := len(t.free); n > 0 {
		s := t.free[n-1]
		t.free = t.free[:n-1]
		return s
	}
	t.users = append(t.users, user{})
	return Slot(len(t.users) - 1)
}

// Delete removes the profile of userID, if any. It reports whether there was
// one.
func (t *Table) Delete(userID string) bool {
	slot, ok := t.byID[userID]
	if !ok {
		return false
	}
	t.remove(slot)
	return true
}

func (t *Table) remove(slot Slot) {
	u := &t.users[slot]
	for r := RuleInterest; r < numRules; r++ {
		for _, k := range u.run(r) {
			t.unpost(r, k)
		}
	}
	delete(t.byID, u.id)
	t.perPart[u.part]--
	*u = user{}
	t.free = append(t.free, slot)
	t.n.Add(-1)
}

// DropPartition removes every profile of partition p and returns how many
// there were. It rebuilds the indexes, so it costs a pass over the table:
// it is for rebalances, not for the stream.
func (t *Table) DropPartition(p int32) int {
	n := 0
	for i := range t.users {
		if u := &t.users[i]; u.alive && u.part == p {
			delete(t.byID, u.id)
			*u = user{}
			t.free = append(t.free, Slot(i))
			n++
		}
	}
	delete(t.perPart, p)
	t.n.Add(int64(-n))
	if n > 0 {
		for r := RuleInterest; r < numRules; r++ {
			for k := range t.index[r] {
				t.compactPostings(r, Key(k))
			}
		}
	}
	return n
}

// Holds reports whether the user in slot is alive and holds k under rule r.
func (t *Table) Holds(s Slot, r Rule, k Key) bool {
	u := &t.users[s]
	if !u.alive {
		return false
	}
	_, found := slices.BinarySearch(u.run(r), k)
	return found
}

// Postings returns the slots indexed under k for rule r. They may include
// stale and duplicate slots: check them with Holds and deduplicate.
// The slice is the table's: do not modify it, and do not keep it across a
// change to the table.
func (t *Table) Postings(r Rule, k Key) []Slot {
	idx := t.index[r]
	if int(k) >= len(idx) {
		return nil
	}
	return idx[k].slots
}

// User is the read-only view of one user that scoring needs.
type User struct {
	ID        string
	Partition int32
	Locale    Key
	Region    Key
}

// User returns the user in slot s; ok is false for a free slot.
func (t *Table) User(s Slot) (u User, ok bool) {
	x := &t.users[s]
	if !x.alive {
		return User{}, false
	}
	return User{ID: x.id, Partition: x.part, Locale: x.locale, Region: x.region}, true
}

// Slots returns the number of slots, the bound of every Slot.
func (t *Table) Slots() int { return len(t.users) }

// InterestWeight returns the weight of tag k for the user in slot s, and
// whether the user has that interest.
func (t *Table) InterestWeight(s Slot, k Key) (float64, bool) {
	u := &t.users[s]
	i, found := slices.BinarySearch(u.run(RuleInterest), k)
	if !found {
		return 0, false
	}
	return float64(u.weights[i]), true
}

// Get returns the profile of userID as the table holds it (interests merged
// by tag, follows and segments sorted by key), for tests and debugging.
func (t *Table) Get(userID string) (Profile, bool) {
	slot, ok := t.byID[userID]
	if !ok {
		return Profile{}, false
	}
	u := &t.users[slot]
	p := Profile{UserID: u.id, Partition: u.part, Locale: t.Name(u.locale), Region: t.Name(u.region)}
	for i, k := range u.run(RuleInterest) {
		p.Interests = append(p.Interests, Interest{Tag: t.Name(k), Weight: float64(u.weights[i])})
	}
	for _, k := range u.run(RuleFollow) {
		p.Follows = append(p.Follows, t.Name(k))
	}
	for _, k := range u.run(RuleSegment) {
		p.Segments = append(p.Segments, t.Name(k))
	}
	return p, true
}
