package codec

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/freshet/freshet/pkg/events"
)

// DecodeChange gives back the ContentChange encoded, and errors that start
// "decode content change: ", say why, and wrap the sentinel IsDataError
// needs.
func TestDecodeChange(t *testing.T) {
	ctx := context.Background()
	c := newCodec(t)
	s := samples()
	want := s["ContentChange/full"].(events.ContentChange)
	change, err := c.EncodeEvent(ctx, "content.changes", want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.DecodeChange(ctx, "content.changes", change)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("decoded\n%+v\nwant\n%+v", *got, want)
	}

	profile, err := c.EncodeEvent(ctx, "user.profiles", s["UserProfile/full"])
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		value []byte
		msg   string
		is    error
	}{
		{"nil value (a tombstone)", nil, "decode content change: empty value", ErrTruncated},
		{"empty value", []byte{}, "decode content change: codec: decode: truncated input: empty value", ErrTruncated},
		{"not avro", []byte("not avro"), "decode content change: codec: decode: bad magic: first byte 0x6e", ErrBadMagic},
		{"body cut short", change[:len(change)-1], "", ErrTruncated},
		{"another event", profile, "decode content change: a UserProfile on content.changes", ErrIncompatible},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := c.DecodeChange(ctx, "content.changes", tc.value)
			if err == nil {
				t.Fatalf("no error, decoded %+v", ev)
			}
			if ev != nil {
				t.Errorf("an event with the error: %+v", ev)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("error %q\nwant  %q", err, tc.msg)
			}
			if !errors.Is(err, tc.is) || !IsDataError(err) {
				t.Errorf("error %q: errors.Is(%v) = %v, IsDataError = %v", err, tc.is, errors.Is(err, tc.is), IsDataError(err))
			}
		})
	}
}

// FuzzDecodeChange feeds arbitrary bytes to DecodeChange: it must never
// panic, its errors are data errors, and a change it decodes encodes again
// and decodes to the same change.
func FuzzDecodeChange(f *testing.F) {
	ctx := context.Background()
	c := newCodec(f)
	all := samples()
	for _, name := range sortedKeys(all) {
		data, err := c.EncodeEvent(ctx, "content.changes", all[name])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{0xC3, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := c.DecodeChange(ctx, "content.changes", data)
		if err != nil {
			if !IsDataError(err) || !strings.HasPrefix(err.Error(), "decode content change: ") {
				t.Fatalf("error %q: not a data error, or without the prefix", err)
			}
			return
		}
		again, err := c.EncodeEvent(ctx, "content.changes", ch)
		if err != nil {
			t.Fatalf("decoded change does not encode: %v", err)
		}
		ch2, err := c.DecodeChange(ctx, "content.changes", again)
		if err != nil {
			t.Fatalf("re-encoded change does not decode: %v", err)
		}
		if dump(ch2.Native()) != dump(ch.Native()) {
			t.Fatalf("round trip:\n got %s\nwant %s", dump(ch2.Native()), dump(ch.Native()))
		}
	})
}
