package config

import (
	"fmt"
	"os"
	"strings"
)

// CheckDocumented returns an error unless the Markdown file at docPath holds
// the variables table of cfg exactly as [Markdown] writes it, so a service's
// documentation cannot drift from its Config. The error carries the current
// table, to paste into the file. Services call it from a test.
func CheckDocumented(docPath string, cfg any, opts ...Option) error {
	table, err := Markdown(cfg, opts...)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return fmt.Errorf("config: read documentation: %w", err)
	}
	if !strings.Contains(string(doc), strings.TrimSpace(table)) {
		return fmt.Errorf("config: %s does not hold the current variables table; put this in it:\n%s", docPath, table)
	}
	return nil
}
