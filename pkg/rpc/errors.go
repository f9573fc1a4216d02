// Package rpc serves a service's Connect API (gRPC, gRPC-Web and JSON over HTTP on one port)
// with the platform's interceptors, plus /healthz, /readyz and /metrics.
package rpc

import (
	"errors"
	"fmt"
	"strings"

	"buf.build/go/protovalidate"
	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
)

// FieldViolation is one broken rule on one request field.
type FieldViolation struct {
	Field string // request field path, e.g. "clinic_id"
	Rule  string // rule id, e.g. "string.uuid" or "clinic.known"
	Msg   string // human-readable explanation
}

// InvalidArgument builds an invalid_argument error whose message lists every violation and
// whose BadRequest detail carries one field violation per field and rule.
func InvalidArgument(vs ...FieldViolation) *connect.Error {
	parts := make([]string, len(vs))
	br := &errdetails.BadRequest{}
	for i, v := range vs {
		parts[i] = fmt.Sprintf("%s: %s [%s]", v.Field, v.Msg, v.Rule)
		br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{
			Field: v.Field, Description: v.Msg, Reason: v.Rule,
		})
	}
	err := connect.NewError(connect.CodeInvalidArgument, errors.New(strings.Join(parts, "; ")))
	if d, derr := connect.NewErrorDetail(br); derr == nil {
		err.AddDetail(d)
	}
	return err
}

// FromValidation converts a protovalidate error into InvalidArgument; other errors become
// internal errors (a broken rule set is our bug, not the caller's).
func FromValidation(err error) *connect.Error {
	var ve *protovalidate.ValidationError
	if !errors.As(err, &ve) {
		return connect.NewError(connect.CodeInternal, errors.New("request validation failed to run"))
	}
	vs := make([]FieldViolation, 0, len(ve.Violations))
	for _, v := range ve.Violations {
		vs = append(vs, FieldViolation{
			Field: protovalidate.FieldPathString(v.Proto.GetField()),
			Rule:  v.Proto.GetRuleId(),
			Msg:   v.Proto.GetMessage(),
		})
	}
	return InvalidArgument(vs...)
}

// Violations extracts the field violations from a Connect error (for clients and tests).
func Violations(err error) []FieldViolation {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	var out []FieldViolation
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			continue
		}
		if br, ok := v.(*errdetails.BadRequest); ok {
			for _, fv := range br.GetFieldViolations() {
				out = append(out, FieldViolation{Field: fv.GetField(), Rule: fv.GetReason(), Msg: fv.GetDescription()})
			}
		}
	}
	return out
}
