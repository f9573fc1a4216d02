package domain

import "errors"

// ErrNotFound: no record with that id (or none the caller may see).
var ErrNotFound = errors.New("not found")

// PreconditionError: the request is well formed but the record's state forbids it, e.g. an
// illegal status move or revoking a consent twice. It becomes failed_precondition.
type PreconditionError struct{ Msg string }

func (e *PreconditionError) Error() string { return e.Msg }

// Precondition returns a *PreconditionError.
func Precondition(msg string) error { return &PreconditionError{Msg: msg} }
