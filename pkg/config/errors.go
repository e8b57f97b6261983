package config

import "fmt"

// VarError is a problem with one environment variable. Load returns one per
// problem, joined with errors.Join; find them with errors.As.
type VarError struct {
	// Var is the full variable name, e.g. FRESHET_KAFKA_BROKERS. It ends in
	// "*" when the problem concerns a group of variables (a struct's Validate
	// returned an error that names no field), e.g. FRESHET_KAFKA_*.
	Var string
	// Err says what is wrong. It never holds the value of a Secret.
	Err error
}

// Error returns "config: VAR: problem".
func (e *VarError) Error() string { return "config: " + e.Var + ": " + e.Err.Error() }

// Unwrap returns the underlying problem.
func (e *VarError) Unwrap() error { return e.Err }

// FieldError blames one field, by its Go name, from a Validate method. Load
// replaces the field name with the variable's. Field is relative to the
// struct whose Validate returned it; a dotted path reaches into nested
// structs ("TLS.CertFile").
type FieldError struct {
	Field string
	Err   error
}

// Error returns "Field: problem"; Load reports it under the variable's name.
func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns the underlying problem.
func (e *FieldError) Unwrap() error { return e.Err }

// FieldErrorf returns a *FieldError for field with a formatted message.
func FieldErrorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
