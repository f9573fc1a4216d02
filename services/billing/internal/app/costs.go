package app

import (
	"context"
	"fmt"
	"time"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// CostsRepo stores what the costs area needs (implemented by adapters/postgres.Costs).
type CostsRepo interface {
	ApplyAttendance(ctx context.Context, tx *bus.Tx, f domain.AttendanceFact) (bool, error)
	RecordEpisode(ctx context.Context, tx *bus.Tx, e domain.Episode) (bool, error)
	SetCostRate(ctx context.Context, tx *bus.Tx, r domain.CostRate) error
	SetFixedCost(ctx context.Context, tx *bus.Tx, c domain.FixedCost) error
	ReportData(ctx context.Context, from, to string, clinics []string) (domain.ReportInput, int64, error)
	SaveEstimate(ctx context.Context, tx *bus.Tx, e domain.Estimate, in domain.EstimateInput, createdBy string) error
	Estimate(ctx context.Context, id string) (domain.Estimate, bool, error)
	Actuals(ctx context.Context, patientID, clinicID, since string) (charged, patientResp int64, err error)
}

// Costs is the use cases of the cost of care delivered and of patient cost estimates.
type Costs struct {
	store *bus.Store
	repo  CostsRepo
	cfg   ConfigRepo
	newID func() string
}

// NewCosts returns the costs use cases; cfg supplies payers, contracts and the sliding scale.
func NewCosts(store *bus.Store, repo CostsRepo, cfg ConfigRepo) *Costs {
	return &Costs{store: store, repo: repo, cfg: cfg, newID: bus.NewID}
}

// RecordAttendance applies one attendance version in the consumer's transaction; it reports
// whether the version was newer than the one kept.
func (c *Costs) RecordAttendance(ctx context.Context, tx *bus.Tx, f domain.AttendanceFact, status string) (bool, error) {
	f, err := domain.NewAttendanceFact(f, status)
	if err != nil {
		return false, err
	}
	return c.repo.ApplyAttendance(ctx, tx, f)
}

// RecordEpisode stores a completed episode in the consumer's transaction.
func (c *Costs) RecordEpisode(ctx context.Context, tx *bus.Tx, e domain.Episode) (bool, error) {
	e, err := domain.ValidateEpisode(e)
	if err != nil {
		return false, err
	}
	return c.repo.RecordEpisode(ctx, tx, e)
}

// costsClinicAccess refuses a well-formed clinic id the caller cannot see (a malformed one is left
// to validation, which names the field).
func costsClinicAccess(p *auth.Principal, clinicID string) error {
	if _, err := domain.ParseID(clinicID); err == nil && !p.CanSeeClinic(clinicID) {
		return fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	return nil
}

// SetCostRate sets a clinician's (or the clinic default) hourly cost.
func (c *Costs) SetCostRate(ctx context.Context, p *auth.Principal, r domain.CostRate) (domain.CostRate, error) {
	if err := costsClinicAccess(p, r.ClinicID); err != nil {
		return r, err
	}
	r, err := domain.ValidateCostRate(r)
	if err != nil {
		return r, err
	}
	return r, c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error { return c.repo.SetCostRate(ctx, tx, r) })
}

// SetFixedCost sets (or with 0 cents removes) a clinic's fixed monthly cost.
func (c *Costs) SetFixedCost(ctx context.Context, p *auth.Principal, f domain.FixedCost) (domain.FixedCost, error) {
	if err := costsClinicAccess(p, f.ClinicID); err != nil {
		return f, err
	}
	f, err := domain.ValidateFixedCost(f)
	if err != nil {
		return f, err
	}
	return f, c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error { return c.repo.SetFixedCost(ctx, tx, f) })
}

// CostReport is a cost report's rows, total and sessions costed at 0 for want of a rate.
type CostReport struct {
	Rows                []domain.CostRow
	Total               domain.CostRow
	SessionsWithoutRate int64
}

// CostReport builds the report for service dates from..to (inclusive) of one clinic, or of
// every clinic the caller can see when clinicID is empty.
func (c *Costs) CostReport(ctx context.Context, p *auth.Principal, from, to, clinicID, groupBy string) (CostReport, error) {
	var out CostReport
	if clinicID != "" {
		if err := costsClinicAccess(p, clinicID); err != nil {
			return out, err
		}
	}
	if err := domain.ValidateReportRange(from, to, groupBy); err != nil {
		return out, err
	}
	var clinics []string
	switch {
	case clinicID != "":
		id, err := domain.ParseID(clinicID)
		if err != nil {
			return out, &domain.ValidationError{Violations: []domain.Violation{{Field: "clinic_id", Rule: "clinic_id.uuid", Msg: "a UUID, or empty"}}}
		}
		clinics = []string{id}
	case !p.CanSeeClinic(auth.AllClinics):
		clinics = []string{}
		for _, cl := range p.Clinics {
			if id, err := domain.ParseID(cl); err == nil {
				clinics = append(clinics, id)
			}
		}
	}
	in, withoutRate, err := c.repo.ReportData(ctx, from, to, clinics)
	if err != nil {
		return out, err
	}
	in.From, _ = time.Parse(time.DateOnly, from)
	in.To, _ = time.Parse(time.DateOnly, to)
	in.GroupBy = groupBy
	out.Rows, out.Total = domain.BuildCostReport(in)
	out.SessionsWithoutRate = withoutRate
	return out, nil
}

// Estimate prices a planned program for a patient, splits it between payer and patient,
// stores it and returns it. A payer of kind self-pay, or no payer, gives a good-faith
// estimate at the self-pay contract's rates (the clinic's contract with that payer; for an
// uninsured patient the contract of any self-pay payer at the clinic), else at the highest
// rates of the clinic's contracts, discounted by the sliding scale.
func (c *Costs) Estimate(ctx context.Context, p *auth.Principal, in domain.EstimateInput) (domain.Estimate, error) {
	if err := costsClinicAccess(p, in.ClinicID); err != nil {
		return domain.Estimate{}, err
	}
	in, err := domain.ValidateEstimateInput(in)
	if err != nil {
		return domain.Estimate{}, err
	}
	payers, err := c.cfg.Payers(ctx)
	if err != nil {
		return domain.Estimate{}, err
	}
	kinds := map[string]string{}
	for _, py := range payers {
		kinds[py.Code] = py.Kind
	}
	if _, ok := kinds[in.PayerID]; in.PayerID != "" && !ok {
		return domain.Estimate{}, &domain.ValidationError{Violations: []domain.Violation{{Field: "payer_id", Rule: "payer_id.exists", Msg: "no payer has this id"}}}
	}
	contracts, err := c.cfg.ClinicContracts(ctx, in.ClinicID)
	if err != nil {
		return domain.Estimate{}, err
	}
	e := domain.Estimate{ID: c.newID(), ClinicID: in.ClinicID, PayerID: in.PayerID, PatientID: in.PatientID,
		StartDate: in.StartDate, ProgramDays: in.ProgramDays(), Lines: []domain.EstimateLine{}, Notes: []string{}}
	e.GoodFaith = in.PayerID == "" || kinds[in.PayerID] == domain.KindSelfPay

	var priced domain.Contract
	found := false
	for _, ct := range contracts {
		if !ct.EffectiveOn(in.StartDate) {
			continue
		}
		if ct.PayerID == in.PayerID || (in.PayerID == "" && kinds[ct.PayerID] == domain.KindSelfPay) {
			priced, found = ct, true
			break
		}
	}
	switch {
	case found:
		e.ContractID = priced.ID
		e.Notes = append(e.Notes, fmt.Sprintf("priced at the rates of the %s contract effective on %s", priced.PayerID, in.StartDate))
	case e.GoodFaith:
		priced, found = domain.EstimateFallbackContract(contracts, in)
		if !found {
			return domain.Estimate{}, fmt.Errorf("%w: the clinic has no contract effective on the start date to price a good-faith estimate with", domain.ErrConflict)
		}
		e.Notes = append(e.Notes, "no self-pay contract at the clinic: each service priced at the highest rate of the clinic's contracts effective on the start date")
	default:
		return domain.Estimate{}, fmt.Errorf("%w: the payer has no contract with the clinic effective on the start date", domain.ErrConflict)
	}
	lines, notes, err := domain.PriceProgram(priced, in)
	if err != nil {
		return domain.Estimate{}, err
	}
	if lines != nil {
		e.Lines = lines
	}
	e.Notes = append(e.Notes, notes...)
	for _, l := range e.Lines {
		e.TotalChargesCents += l.AmountCents
	}
	if e.GoodFaith {
		tiers, err := c.cfg.SlidingScale(ctx)
		if err != nil {
			return domain.Estimate{}, err
		}
		domain.SplitSelfPay(&e, in, tiers)
	} else {
		domain.SplitInsured(&e, in)
	}
	err = c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		return c.repo.SaveEstimate(ctx, tx, e, in, p.Subject)
	})
	return e, err
}

// EstimateComparison is an estimate against the patient's actual charges.
type EstimateComparison struct {
	Estimate  domain.Estimate
	PatientID string
	domain.EstimateComparison
}

// CompareEstimate compares a stored estimate with the charges and patient responsibility of
// patientID (or the estimate's patient) at its clinic from its start date. An estimate at a
// clinic the caller cannot see is not found.
func (c *Costs) CompareEstimate(ctx context.Context, p *auth.Principal, estimateID, patientID string) (EstimateComparison, error) {
	var out EstimateComparison
	id, err := domain.ParseID(estimateID)
	if err != nil {
		return out, &domain.ValidationError{Violations: []domain.Violation{{Field: "estimate_id", Rule: "estimate_id.uuid", Msg: "must be a UUID"}}}
	}
	e, ok, err := c.repo.Estimate(ctx, id)
	if err != nil {
		return out, err
	}
	if !ok || !p.CanSeeClinic(e.ClinicID) {
		return out, domain.ErrNotFound
	}
	if patientID == "" {
		patientID = e.PatientID
	}
	if patientID == "" {
		return out, &domain.ValidationError{Violations: []domain.Violation{{Field: "patient_id", Rule: "patient_id.required",
			Msg: "the estimate names no patient: give one"}}}
	}
	if patientID, err = domain.ParseID(patientID); err != nil {
		return out, &domain.ValidationError{Violations: []domain.Violation{{Field: "patient_id", Rule: "patient_id.uuid", Msg: "must be a UUID"}}}
	}
	charged, resp, err := c.repo.Actuals(ctx, patientID, e.ClinicID, e.StartDate)
	if err != nil {
		return out, err
	}
	return EstimateComparison{Estimate: e, PatientID: patientID, EstimateComparison: domain.CompareEstimate(e, charged, resp)}, nil
}
