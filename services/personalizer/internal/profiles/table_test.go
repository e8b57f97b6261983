package profiles

import (
	"fmt"
	"reflect"
	"testing"
)

func TestUpsertGetDelete(t *testing.T) {
	tb := New(0)
	tb.Upsert(Profile{UserID: "u", Partition: 3, Locale: "en", Region: "fr",
		Interests: []Interest{{Tag: "go", Weight: 1}, {Tag: "rust", Weight: 0.5}, {Tag: "go", Weight: 0.25}, {Tag: "", Weight: 9}},
		Follows:   []string{"tag:go", "author:7", "tag:go", ""}, Segments: []string{"all"}})
	got, ok := tb.Get("u")
	want := Profile{UserID: "u", Partition: 3, Locale: "en", Region: "fr",
		Interests: []Interest{{Tag: "go", Weight: 1.25}, {Tag: "rust", Weight: 0.5}}, // merged, empty tag dropped
		Follows:   []string{"tag:go", "author:7"}, Segments: []string{"all"}}         // deduplicated, in key order
	if !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v, want %+v", got, want)
	}
	if tb.Len() != 1 || tb.PartitionLen(3) != 1 {
		t.Errorf("Len %d, PartitionLen %d", tb.Len(), tb.PartitionLen(3))
	}
	// An update moves the user to another partition and replaces everything.
	tb.Upsert(Profile{UserID: "u", Partition: 1, Segments: []string{"new"}})
	if got, _ := tb.Get("u"); got.Partition != 1 || got.Interests != nil || got.Follows != nil || got.Region != "" {
		t.Errorf("after update: %+v", got)
	}
	if tb.PartitionLen(3) != 0 || tb.PartitionLen(1) != 1 {
		t.Errorf("partition counts after the move: %d, %d", tb.PartitionLen(3), tb.PartitionLen(1))
	}
	if !tb.Delete("u") || tb.Delete("u") || tb.Len() != 0 {
		t.Errorf("Delete twice: len %d", tb.Len())
	}
	if _, ok := tb.Get("u"); ok {
		t.Error("deleted user still there")
	}
	if tb.Lookup("never-seen") != NoKey || tb.Lookup("") != NoKey {
		t.Error("Lookup interned or found an unknown key")
	}
}

func TestKeyBounds(t *testing.T) {
	tb := New(0)
	var many []Interest
	var follows []string
	for i := range MaxKeysPerRule + 10 {
		many = append(many, Interest{Tag: fmt.Sprint("t", i), Weight: 1})
		follows = append(follows, fmt.Sprint("f", i))
	}
	tb.Upsert(Profile{UserID: "big", Interests: many, Follows: follows, Segments: []string{"s"}})
	got, _ := tb.Get("big")
	if len(got.Interests) != MaxKeysPerRule || len(got.Follows) != MaxKeysPerRule || len(got.Segments) != 1 {
		t.Errorf("kept %d interests, %d follows, %d segments", len(got.Interests), len(got.Follows), len(got.Segments))
	}
	s := tb.Lookup("s")
	if !tb.Holds(0, RuleSegment, s) || tb.Holds(0, RuleFollow, s) {
		t.Error("segment run misplaced")
	}
}

// BenchmarkUpsert1M builds a table of 1,000,000 profiles (5 interests among
// 2,000 tags, 3 follows, 2 segments) and reports the heap it takes.
func BenchmarkUpsert1M(b *testing.B) {
	const n = 1_000_000
	ps := make([]Profile, 1000)
	for i := range ps {
		p := Profile{Locale: "en-GB", Region: fmt.Sprint("r", i%50), Segments: []string{fmt.Sprint("seg", i%10), "all"},
			Follows: []string{fmt.Sprint("author:", i%500), fmt.Sprint("section:s", i%20), fmt.Sprint("tag:tag", i%2000)}}
		for j := range 5 {
			p.Interests = append(p.Interests, Interest{Tag: fmt.Sprint("tag", (i*7+j*131)%2000), Weight: 1})
		}
		ps[i] = p
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("user-", i)
	}
	b.ReportAllocs()
	for range b.N {
		before := heap()
		tb := New(n)
		for i := range n {
			p := ps[i%len(ps)]
			p.UserID = ids[i]
			tb.Upsert(p)
		}
		b.ReportMetric(float64(heap()-before)/n, "bytes/profile")
		if tb.Len() != n {
			b.Fatal(tb.Len())
		}
	}
}
