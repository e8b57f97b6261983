package codectest

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

// TestSRClient drives the registry with franz-go's sr client, the way
// pkg/codec and other tools use it.
func TestSRClient(t *testing.T) {
	reg := NewRegistry()
	defer reg.Close()
	ctx := context.Background()
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	a := sr.Schema{Schema: `{"type":"record","name":"A","fields":[]}`}
	b := sr.Schema{Schema: `{"type":"record","name":"B","fields":[]}`}

	// CreateSchema registers, then looks the id's usages and versions up.
	ssA, err := cl.CreateSchema(ctx, "t-value", a)
	if err != nil {
		t.Fatal(err)
	}
	if ssA.ID != 1 || ssA.Version != 1 || ssA.Subject != "t-value" || ssA.Schema.Schema != a.Schema {
		t.Errorf("CreateSchema = %+v", ssA)
	}
	cases := []struct {
		name    string
		subject string
		schema  sr.Schema
		id      int
	}{
		{"same schema again keeps its id", "t-value", a, 1},
		{"new schema gets a new id", "t-value", b, 2},
		{"ids are global across subjects", "u-value", a, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, err := cl.RegisterSchema(ctx, tc.subject, tc.schema, -1, -1)
			if err != nil {
				t.Fatal(err)
			}
			if id != tc.id {
				t.Errorf("id = %d, want %d", id, tc.id)
			}
		})
	}
	versions, err := cl.SubjectVersions(ctx, "t-value")
	if err != nil || len(versions) != 2 {
		t.Errorf("SubjectVersions = %v, %v; want [1 2]", versions, err)
	}
	latest, err := cl.SchemaByVersion(ctx, "t-value", -1)
	if err != nil || latest.ID != 2 || latest.Version != 2 {
		t.Errorf("latest = %+v, %v; want id 2 version 2", latest, err)
	}
	got, err := cl.SchemaByID(ctx, 2)
	if err != nil || got.Schema != b.Schema || got.Type != sr.TypeAvro {
		t.Errorf("SchemaByID(2) = %+v, %v", got, err)
	}
	found, err := cl.LookupSchema(ctx, "u-value", a)
	if err != nil || found.ID != 1 {
		t.Errorf("LookupSchema = %+v, %v", found, err)
	}

	notFound := []struct {
		name string
		call func() error
		code int
	}{
		{"unknown id", func() error { _, err := cl.SchemaByID(ctx, 99); return err }, 40403},
		{"unknown subject", func() error { _, err := cl.SubjectVersions(ctx, "nope"); return err }, 40401},
		{"unknown version", func() error { _, err := cl.SchemaByVersion(ctx, "t-value", 9); return err }, 40402},
		{"schema not in subject", func() error { _, err := cl.LookupSchema(ctx, "u-value", b); return err }, 40403},
	}
	for _, tc := range notFound {
		t.Run(tc.name, func(t *testing.T) {
			var re *sr.ResponseError
			if err := tc.call(); !errors.As(err, &re) || re.ErrorCode != tc.code || re.StatusCode != 404 {
				t.Fatalf("err = %v, want a 404 with error code %d", err, tc.code)
			}
		})
	}
	if n := reg.Requests("GET /schemas/ids/{id}"); n != 2 {
		t.Errorf("Requests(GET /schemas/ids/{id}) = %d, want 2", n)
	}
}
