package domain

import (
	"fmt"
	"strings"
	"time"
)

// Coverage is billing's copy of a patient's coverage (intake's CoverageChanged).
type Coverage struct {
	ID                     string
	PatientID              string
	ClinicID               string
	PayerID                string
	Plan                   string
	MemberID               string
	GroupNumber            string
	SubscriberRelationship string // self, spouse, child, other
	EffectiveFrom          string // "YYYY-MM-DD"
	EffectiveTo            string // "" open-ended
	Eligibility            string // unknown, unverified, eligible, ineligible
	Priority               int32  // 1 primary, 2 secondary, 3 tertiary
	UpdatedAt              time.Time
	SourceEventID          string
}

// ValidateCoverage checks what billing relies on (ErrInvalid, naming fields only).
func ValidateCoverage(c Coverage) (Coverage, error) {
	var errs []string
	id := func(field string, v *string) {
		s, err := ParseID(*v)
		if err != nil {
			errs = append(errs, field+": must be a UUID")
		}
		*v = s
	}
	id("coverage_id", &c.ID)
	id("patient_id", &c.PatientID)
	id("clinic_id", &c.ClinicID)
	id("source_event_id", &c.SourceEventID)
	c.PayerID = strings.TrimSpace(c.PayerID)
	if c.PayerID == "" {
		errs = append(errs, "payer_id: required")
	}
	from, errFrom := time.Parse(time.DateOnly, c.EffectiveFrom)
	if errFrom != nil {
		errs = append(errs, "effective_from: must be YYYY-MM-DD")
	}
	if c.EffectiveTo != "" {
		to, err := time.Parse(time.DateOnly, c.EffectiveTo)
		if err != nil || (errFrom == nil && to.Before(from)) {
			errs = append(errs, "effective_to: a date on or after effective_from, or empty")
		}
	}
	if c.Priority < 1 || c.Priority > 3 {
		errs = append(errs, "priority: 1 to 3")
	}
	if c.UpdatedAt.IsZero() {
		errs = append(errs, "updated_at: required")
	}
	if len(errs) > 0 {
		return c, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, ", "))
	}
	return c, nil
}
