package freshness

import (
	"encoding/json"
	"testing"
)

// TestParseDelivery: the fast path reads what encoding/json reads, on the
// gateway's delivery JSON, including a title that mimics the fields.
func TestParseDelivery(t *testing.T) {
	for _, data := range []string{
		`{"event_id":"e1","op":"create","content":{"id":"7","title":"x"},"score":2,"committed_at":1764770000123,"deadline":1764770900123}`,
		`{"event_id":"e2","op":"update","channel":"breaking","content":{"id":"8","title":"\"committed_at\":1,"},"committed_at":1764770000456}`,
		`{"event_id":"e\"3","op":"create","content":{"id":"9"},"committed_at":1764770000789,"deadline":0}`,
	} {
		var want deliveryJSON
		if err := json.Unmarshal([]byte(data), &want); err != nil {
			t.Fatal(err)
		}
		got, ok := parseDelivery([]byte(data))
		if !ok || got != want {
			t.Errorf("parseDelivery(%s) = %+v, %v; want %+v", data, got, ok, want)
		}
	}
	if _, ok := parseDelivery([]byte(`not json`)); ok {
		t.Error("garbage parsed")
	}
}

func TestKindOf(t *testing.T) {
	n := map[string]int{}
	for i := range 100 {
		n[kindOf(i)]++
	}
	if n[kindFollow] != 50 || n[kindInterest] != 30 || n[kindChannel] != 20 {
		t.Fatalf("kinds %v", n)
	}
}
