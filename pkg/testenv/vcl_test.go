package testenv

import (
	"strings"
	"testing"
)

func TestReferenceVCL(t *testing.T) {
	tests := []struct {
		name      string
		backend   string
		want      []string // substrings of the VCL
		wantFatal string   // substring; "" means no failure
	}{
		{"ipv4", "127.0.0.1:8080", []string{`.host = "127.0.0.1";`, `.port = "8080";`}, ""},
		{"ipv6 without brackets in the VCL", "[::1]:9", []string{`.host = "::1";`, `.port = "9";`}, ""},
		{"no port", "127.0.0.1", nil, "missing port"},
		{"empty port", "127.0.0.1:", nil, "missing host or port"},
		{"empty host", ":80", nil, "missing host or port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recordingTB{TB: t}
			vcl := ReferenceVCL(r, tt.backend)
			if (tt.wantFatal == "") != (r.fatal == "") || !strings.Contains(r.fatal, tt.wantFatal) {
				t.Fatalf("fatal %q; want one containing %q", r.fatal, tt.wantFatal)
			}
			if tt.wantFatal != "" {
				return
			}
			if strings.Contains(vcl, "BACKEND_HOST") || strings.Contains(vcl, "BACKEND_PORT") {
				t.Errorf("placeholders left in the VCL:\n%s", vcl)
			}
			for _, w := range tt.want {
				if !strings.Contains(vcl, w) {
					t.Errorf("VCL does not hold %s:\n%s", w, vcl)
				}
			}
		})
	}
}
