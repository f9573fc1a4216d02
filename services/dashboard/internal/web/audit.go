package web

import (
	"context"
	"fmt"

	"github.com/trellis-health/trellis/pkg/audit"
	"github.com/trellis-health/trellis/pkg/auth"
)

// The PHI audit trail of the pages (pkg/audit, docs/security.md "Audit trail"): a page or JSON
// response that shows patient-level rows is a read of patient data, recorded like a Connect
// call of the other services (pkg/rpc audit.go): who (the token's subject and roles), what
// (the method and path as the procedure, access read), which patients (patient_ids) and other
// records of one patient (record_ids "claim_id=<uuid>"), when, from where (peer address,
// X-Forwarded-For as sent, user agent), outcome ok. Pages of aggregates only write no row.
// The rows go to the dashboard's audit_log, which GET /audit serves to a compliance officer.
//
// Fail closed: when the row cannot be written the page is not shown (an error page, or a 500
// from the JSON endpoint), so nothing is disclosed that is not on record.

// recordRead writes the audit rows of rq's response naming patients and records (nothing when
// it names neither, or when auditing is off).
func (h *Handler) recordRead(ctx context.Context, rq *request, patients, records []string) error {
	if h.cfg.Audit == nil || len(patients) == 0 && len(records) == 0 {
		return nil
	}
	// Append spreads the ids over rows of audit.MaxIDsPerRow.
	e := audit.Entry{Subject: rq.user.Subject, Roles: rq.user.Roles, Procedure: rq.r.Method + " " + rq.r.URL.Path,
		Access: audit.Read, Outcome: audit.OutcomeOK, PatientIDs: patients, RecordIDs: records, ClientIP: auth.ClientIP(rq.r),
		ForwardedFor: rq.r.Header.Get("X-Forwarded-For"), UserAgent: rq.r.UserAgent()}
	if err := h.cfg.Audit.Append(ctx, e); err != nil {
		return fmt.Errorf("web: audit trail: %w", err)
	}
	return nil
}
