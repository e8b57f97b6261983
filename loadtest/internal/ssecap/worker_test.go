package ssecap

import "testing"

func TestSequenceOf(t *testing.T) {
	for data, want := range map[string]int64{
		`{"event_id":"e","op":"update","content":{"id":"seq-3","title":"load","version":3}}`: 3,
		`{"event_id":"e","op":"update","content":{"id":"seq-0","title":"load"}}`:             0,
	} {
		if n, ok := sequenceOf([]byte(data)); !ok || n != want {
			t.Errorf("sequenceOf(%s) = %d, %v", data, n, ok)
		}
	}
	for _, data := range []string{`{"event_id":"e","content":{"id":"bcast-1","version":1}}`, `not json "id":"seq-`} {
		if _, ok := sequenceOf([]byte(data)); ok {
			t.Errorf("sequenceOf(%s) took a number", data)
		}
	}
}
