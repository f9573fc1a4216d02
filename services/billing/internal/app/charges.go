package app

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
)

// Subjects of the charges area.
const (
	SubjectChargeCreated             = "trellis.billing.charge.created.v1"
	SubjectChargeStatusChanged       = "trellis.billing.charge.status_changed.v1"
	SubjectAuthorizationNearlyUsed   = "trellis.billing.authorization.nearly_used.v1"
	SubjectAuthorizationExhausted    = "trellis.billing.authorization.exhausted.v1"
	defaultChargesLimit, maxChargesL = 50, 500
)

// ChargesRepo stores the charges area (implemented by adapters/postgres).
type ChargesRepo interface {
	LockPatient(ctx context.Context, tx *bus.Tx, patientID, clinicID string) error
	// UpsertAttendance takes the patient lock (LockPatient) itself and reads the inputs of a's
	// day after the upsert (as DayInputs), in the same round trip.
	UpsertAttendance(ctx context.Context, tx *bus.Tx, a domain.Attendance) (changed bool, oldDate string, in domain.DayInputs, err error)
	// DayInputs sends writes, then reads everything recomputing a day needs, in one round trip.
	DayInputs(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite, patientID, clinicID, date string) (domain.DayInputs, error)
	UpsertCoverage(ctx context.Context, tx *bus.Tx, c domain.Coverage) (bool, error)
	PayerExists(ctx context.Context, tx *bus.Tx, code string) (bool, error)
	UpsertConsent(ctx context.Context, tx *bus.Tx, c domain.Consent) (bool, error)
	RevokeConsent(ctx context.Context, tx *bus.Tx, c domain.Consent) (bool, error)
	Consents(ctx context.Context, tx *bus.Tx, patientID, clinicID string) ([]domain.Consent, error)
	Days(ctx context.Context, tx *bus.Tx, patientID, clinicID string, statuses, reasons []string) ([]string, error)
	// DaysAndUsage sends writes, then reads the days (as Days) and the usage of ids (as
	// Usage), in one round trip.
	DaysAndUsage(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite, patientID, clinicID string,
		statuses, reasons, ids []string) ([]string, []domain.AuthorizationUse, error)
	PatientsToReprice(ctx context.Context, tx *bus.Tx, clinicID, payerID string) ([]string, error)
	ReadyCharges(ctx context.Context, tx *bus.Tx, patientID, clinicID string) ([]domain.Charge, error)
	// WriteCharges sends writes (inserts and status changes), in order, in one round trip.
	WriteCharges(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite) error
	Authorization(ctx context.Context, tx *bus.Tx, id string) (domain.Authorization, bool, error)
	SaveAuthorization(ctx context.Context, tx *bus.Tx, a domain.Authorization) error
	// Usage sends writes, then reads the authorizations' used units (kept current as charges
	// are written) and the notices sent, in one round trip, in id order.
	Usage(ctx context.Context, tx *bus.Tx, writes []domain.ChargeWrite, ids []string) ([]domain.AuthorizationUse, error)
	SetNotified(ctx context.Context, tx *bus.Tx, id string, nearlyUsed, exhausted bool) error
	ListAuthorizations(ctx context.Context, clinicID, patientID string) ([]domain.Authorization, error)
	ListCharges(ctx context.Context, f domain.ChargeFilter) ([]domain.Charge, string, error)
}

// Charges is the use cases of the charges area: billing's copies of attendance, coverage and
// consent, the charges made from them, and authorizations.
type Charges struct {
	store  *bus.Store
	repo   ChargesRepo
	ledger SelfPayLedger
	newID  func() string
	now    func() time.Time
}

// SelfPayLedger posts charges billed to the patient (self-pay) to the patient's account, and
// takes them back when they are voided (PatientLedger).
type SelfPayLedger interface {
	Billed(ctx context.Context, tx *bus.Tx, ch domain.Charge) error
	Unbilled(ctx context.Context, tx *bus.Tx, ch domain.Charge) error
}

// NewCharges returns the charges use cases.
func NewCharges(store *bus.Store, repo ChargesRepo, ledger SelfPayLedger) *Charges {
	return &Charges{store: store, repo: repo, ledger: ledger, newID: bus.NewID, now: time.Now}
}

// RecordAttendance stores an attendance version (in the consumer's tx) and, if it is newer
// than the stored one, recomputes the charges of the patient's day (and of the day the
// appointment was on before, if a correction moved it). An older or replayed version changes
// nothing. Invalid input wraps domain.ErrInvalid.
func (c *Charges) RecordAttendance(ctx context.Context, tx *bus.Tx, a domain.Attendance) (changed bool, err error) {
	a, err = domain.ValidateAttendance(a)
	if err != nil {
		return false, err
	}
	// The patient lock is taken by UpsertAttendance, and the day's inputs read, in the same
	// round trip.
	changed, oldDate, in, err := c.repo.UpsertAttendance(ctx, tx, a)
	if err != nil || !changed {
		return false, err
	}
	pre := &in
	if oldDate != "" && oldDate != a.LocalDate {
		if err := c.recomputeDay(ctx, tx, a.PatientID, a.ClinicID, oldDate, nil); err != nil {
			return true, err
		}
		pre = nil // units given back on the old day may have changed this one: read it again
	}
	return true, c.recomputeDay(ctx, tx, a.PatientID, a.ClinicID, a.LocalDate, pre)
}

// ContractChanged re-decides, after a contract of payerID at clinicID was created or changed,
// the charges it may affect: those held for a missing contract at the clinic (one may apply
// now) and the ready or held charges of that payer (codes, rates or mode may have changed).
// Days with only submitted charges are left alone: those claims went out under the old terms.
// It returns how many patients it re-decided.
func (c *Charges) ContractChanged(ctx context.Context, tx *bus.Tx, clinicID, payerID string) (int, error) {
	patients, err := c.repo.PatientsToReprice(ctx, tx, clinicID, payerID)
	if err != nil {
		return 0, err
	}
	// In the order of their lock keys, as pkg/bus sorts a consumer group's and an 835 posting
	// sorts its own (patients share keys: domain.ChargeLockBuckets), so two holders never wait
	// for each other in a cycle.
	slices.SortFunc(patients, func(a, b string) int {
		return cmp.Or(cmp.Compare(domain.ChargesLockKey(a, clinicID), domain.ChargesLockKey(b, clinicID)), cmp.Compare(a, b))
	})
	open := []string{domain.ChargeReady, domain.ChargeHeld}
	for _, patient := range patients {
		if err := c.repo.LockPatient(ctx, tx, patient, clinicID); err != nil {
			return 0, err
		}
		days, err := c.repo.Days(ctx, tx, patient, clinicID, open, []string{""})
		if err != nil {
			return 0, err
		}
		for _, d := range days {
			if err := c.recomputeDay(ctx, tx, patient, clinicID, d, nil); err != nil {
				return 0, err
			}
		}
	}
	return len(patients), nil
}

// RecordCoverage stores a coverage unless a copy as new is stored, then re-evaluates the
// patient's charges held for coverage or contract.
func (c *Charges) RecordCoverage(ctx context.Context, tx *bus.Tx, cov domain.Coverage) (changed bool, err error) {
	cov, err = domain.ValidateCoverage(cov)
	if err != nil {
		return false, err
	}
	if err := c.repo.LockPatient(ctx, tx, cov.PatientID, cov.ClinicID); err != nil {
		return false, err
	}
	if changed, err = c.repo.UpsertCoverage(ctx, tx, cov); err != nil || !changed {
		return false, err
	}
	return true, c.reevaluate(ctx, tx, cov.PatientID, cov.ClinicID, domain.HoldCoverage, domain.HoldContract)
}

// GrantConsent stores a granted consent version, then applies the consent gate.
func (c *Charges) GrantConsent(ctx context.Context, tx *bus.Tx, con domain.Consent) (changed bool, err error) {
	con, err = domain.ValidateConsent(con)
	if err != nil {
		return false, err
	}
	if con.Version < 1 {
		return false, fmt.Errorf("%w: version: at least 1", domain.ErrInvalid)
	}
	if err := c.repo.LockPatient(ctx, tx, con.PatientID, con.ClinicID); err != nil {
		return false, err
	}
	if changed, err = c.repo.UpsertConsent(ctx, tx, con); err != nil || !changed {
		return false, err
	}
	return true, c.consentGate(ctx, tx, con.PatientID, con.ClinicID)
}

// RevokeConsent records a revocation (of the payment scope), then applies the consent gate.
func (c *Charges) RevokeConsent(ctx context.Context, tx *bus.Tx, con domain.Consent) (changed bool, err error) {
	if con.RevokedAt.IsZero() {
		con.RevokedAt = c.now()
	}
	con.EffectiveFrom = con.RevokedAt
	con, err = domain.ValidateConsent(con)
	if err != nil {
		return false, err
	}
	if err := c.repo.LockPatient(ctx, tx, con.PatientID, con.ClinicID); err != nil {
		return false, err
	}
	if changed, err = c.repo.RevokeConsent(ctx, tx, con); err != nil || !changed {
		return false, err
	}
	return true, c.consentGate(ctx, tx, con.PatientID, con.ClinicID)
}

// consentGate: with a valid payment consent the charges held for consent are evaluated again
// (they may stay held for another reason); without one the ready charges are held for consent
// (submitted ones stay as they are).
func (c *Charges) consentGate(ctx context.Context, tx *bus.Tx, patientID, clinicID string) error {
	ok, err := c.hasConsent(ctx, tx, patientID, clinicID)
	if err != nil {
		return err
	}
	if ok {
		return c.reevaluate(ctx, tx, patientID, clinicID, domain.HoldConsent)
	}
	ready, err := c.repo.ReadyCharges(ctx, tx, patientID, clinicID)
	if err != nil {
		return err
	}
	w := &chargeWrites{}
	for _, ch := range ready {
		if err := c.setStatus(ctx, tx, w, ch, domain.ChargeHeld, domain.HoldConsent, ch.AuthorizationID, ch.AuthorizedUnits); err != nil {
			return err
		}
	}
	return c.flush(ctx, tx, w)
}

func (c *Charges) hasConsent(ctx context.Context, tx *bus.Tx, patientID, clinicID string) (bool, error) {
	cs, err := c.repo.Consents(ctx, tx, patientID, clinicID)
	if err != nil {
		return false, err
	}
	return domain.HasPaymentConsent(cs, c.now()), nil
}

// reevaluate recomputes every day of the patient's charges held for one of reasons (a prefix
// of the hold reason), oldest first.
func (c *Charges) reevaluate(ctx context.Context, tx *bus.Tx, patientID, clinicID string, reasons ...string) error {
	days, err := c.repo.Days(ctx, tx, patientID, clinicID, []string{domain.ChargeHeld}, reasons)
	if err != nil {
		return err
	}
	for _, d := range days {
		if err := c.recomputeDay(ctx, tx, patientID, clinicID, d, nil); err != nil {
			return err
		}
	}
	return nil
}

// recomputeDay compares the charges a patient's day at a clinic should have with the stored
// ones that are not void: an unchanged charge keeps its id (only its status is decided
// again, while it is ready or held); a changed one is voided and a new one created (which
// names it as replaced if it went to a payer); a unit no longer billable is voided. The caller
// holds the patient lock. pre, if not nil, is the day's inputs, read since the last write.
//
// The charge writes are not sent one by one: they wait in a chargeWrites and go with the next
// statement (the next day's inputs, the usage read at the end), in its round trip.
func (c *Charges) recomputeDay(ctx context.Context, tx *bus.Tx, patientID, clinicID, date string, pre *domain.DayInputs) error {
	touched, w := newUsage(), &chargeWrites{}
	freed, err := c.recomputeOneDay(ctx, tx, w, patientID, clinicID, date, touched, pre)
	if err != nil {
		return err
	}
	if freed {
		// A void gave authorization units back: the patient's other days waiting for units
		// may now take them (oldest first). Those recomputations free nothing more: a held
		// charge that takes units voids nothing. The usage is read with the days: final if
		// no other day waits (the common case).
		days, us, err := c.repo.DaysAndUsage(ctx, tx, w.take(), patientID, clinicID, []string{domain.ChargeHeld},
			[]string{domain.HoldAuthExhausted}, touched.sorted())
		if err != nil {
			return err
		}
		days = slices.DeleteFunc(days, func(d string) bool { return d == date })
		if len(days) == 0 {
			return c.announce(ctx, tx, us)
		}
		for _, d := range days {
			if _, err := c.recomputeOneDay(ctx, tx, w, patientID, clinicID, d, touched, nil); err != nil {
				return err
			}
		}
	}
	// Usage events once, on the final counts: a unit given back and taken again in the same
	// transaction crosses no threshold.
	return c.announceUsage(ctx, tx, w, touched)
}

// chargeWrites are charge writes not sent yet: the next statement of the recomputation takes
// them along, in its round trip (Postgres runs them in order, before it).
type chargeWrites struct{ list []domain.ChargeWrite }

func (w *chargeWrites) add(insert bool, ch domain.Charge) {
	w.list = append(w.list, domain.ChargeWrite{Insert: insert, Charge: ch})
}

// take returns the writes and empties w.
func (w *chargeWrites) take() []domain.ChargeWrite {
	l := w.list
	w.list = nil
	return l
}

// flush sends the writes not sent yet (before a statement that does not take them along).
func (c *Charges) flush(ctx context.Context, tx *bus.Tx, w *chargeWrites) error {
	if len(w.list) == 0 {
		return nil
	}
	return c.repo.WriteCharges(ctx, tx, w.take())
}

// usage tracks the authorizations a recomputation used or freed units of (to announce once,
// on their final counts). Their used units need no recount: the database moves them with
// each charge written (migration 00014), so every day's inputs read them current.
type usage struct {
	touched map[string]bool
}

func newUsage() *usage { return &usage{touched: map[string]bool{}} }

// changed records that a charge holding units of id was written.
func (u *usage) changed(id string) { u.touched[id] = true }

// sorted returns the touched authorizations, sorted.
func (u *usage) sorted() []string {
	ids := make([]string, 0, len(u.touched))
	for id := range u.touched {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// recomputeOneDay is recomputeDay for one day; freed reports whether a void gave
// authorization units back. The authorizations it used or freed are added to touched (the
// caller announces usage). Its writes are added to w; pre, if not nil, is the day's inputs
// (w is empty).
func (c *Charges) recomputeOneDay(ctx context.Context, tx *bus.Tx, w *chargeWrites, patientID, clinicID, date string, touched *usage, pre *domain.DayInputs) (freed bool, err error) {
	// Everything the day depends on, in one round trip with the writes waiting (the
	// authorizations' used units are current, including what an earlier day of this
	// recomputation changed).
	var in domain.DayInputs
	if pre != nil {
		in = *pre
	} else if in, err = c.repo.DayInputs(ctx, tx, w.take(), patientID, clinicID, date); err != nil {
		return false, err
	}
	sessions, cov, hasCov := in.Sessions, in.Coverage, in.HasCoverage
	var contract *domain.Contract
	selfPay := false
	if hasCov && in.PayerKnown && in.HasContract {
		contract = &in.Contract
		selfPay = in.PayerKind == domain.KindSelfPay
	}
	contractID := ""
	if contract != nil {
		contractID = contract.ID
	}
	lines := domain.DayLines(patientID, clinicID, date, sessions, contract)
	wanted := map[string]domain.Line{}
	for _, l := range lines {
		wanted[l.BillableUnit] = l
	}
	existing := in.Charges

	// Voids first: they give their authorization units back (given: the units per
	// authorization, which the database gave back as it voided).
	kept := map[string]domain.Charge{}
	given := map[string]int32{}
	replaced := map[string]domain.Charge{}
	for _, ex := range existing {
		l, want := wanted[ex.BillableUnit]
		if want && ex.SameBilling(l, cov.PayerID, contractID, cov.ID) {
			kept[ex.BillableUnit] = ex
			continue
		}
		reason := domain.VoidNoLongerBilling
		if want {
			reason = domain.VoidCorrected
			if ex.Sent() {
				replaced[ex.BillableUnit] = ex
			}
		}
		if err := c.setStatusReason(ctx, tx, w, ex, domain.ChargeVoid, "", reason, ex.AuthorizationID, ex.AuthorizedUnits); err != nil {
			return false, err
		}
		if ex.AuthorizationID != "" {
			touched.changed(ex.AuthorizationID)
			given[ex.AuthorizationID] += ex.AuthorizedUnits
			freed = true
		}
	}

	// Then the wanted charges, in billable-unit order.
	var consent *bool
	auths := map[string][]domain.Authorization{} // by service
	used := map[string]int32{}
	for _, l := range lines {
		gates := domain.Gates{HasCoverage: hasCov, HasContract: contract != nil, SelfPay: selfPay}
		ex, isKept := kept[l.BillableUnit]
		if isKept && !ex.Open() {
			continue // submitted, paid, denied or billed to the patient: past the gates
		}
		authID, authUnits := "", int32(0)
		if contract != nil && contract.RequiresAuthorization && !selfPay {
			if isKept && ex.AuthorizationID != "" {
				authID, authUnits = ex.AuthorizationID, ex.AuthorizedUnits
			} else {
				list, ok := auths[l.Service]
				if !ok {
					list = in.AuthorizationsFor(cov.PayerID, l.Service)
					for i, a := range list { // the units the voids above gave back are available
						list[i].UsedUnits -= given[a.ID]
					}
					auths[l.Service] = list
				}
				var hold string
				authID, hold = domain.PickAuthorization(list, used, date, l.Units)
				gates.AuthHold = hold
				if authID != "" {
					authUnits = l.Units
					if _, seen := used[authID]; !seen {
						for _, a := range list {
							if a.ID == authID {
								used[authID] = a.UsedUnits
							}
						}
					}
					used[authID] += l.Units
				}
			}
		}
		if gates.HasContract && !selfPay && gates.AuthHold == "" {
			if consent == nil {
				ok := domain.HasPaymentConsent(in.Consents, c.now())
				consent = &ok
			}
			gates.HasConsent = *consent
		}
		// A charge waiting for consent keeps the units it was given.
		status, hold := domain.Decide(gates)
		if isKept && ex.AuthorizationID != "" && ex.AuthorizationID != authID {
			touched.changed(ex.AuthorizationID)
		}
		if isKept && status == domain.ChargeReady && ex.Status == domain.ChargeHeld && !domain.OwnHold(ex.HoldReason) {
			continue // held by claims for a reason of its own: claims releases it
		}
		if isKept {
			if ex.Status != status || ex.HoldReason != hold || ex.AuthorizationID != authID {
				if err := c.setStatus(ctx, tx, w, ex, status, hold, authID, authUnits); err != nil {
					return false, err
				}
				if authID != "" && authID != ex.AuthorizationID {
					touched.changed(authID)
				}
			}
			continue
		}
		ch := domain.Charge{ID: c.newID(), Line: l, PatientID: patientID, ClinicID: clinicID, ServiceDate: date,
			PayerID: cov.PayerID, ContractID: contractID, CoverageID: cov.ID, Status: status, HoldReason: hold,
			ReplacesChargeID: replaced[l.BillableUnit].ID, AuthorizationID: authID, AuthorizedUnits: authUnits}
		w.add(true, ch)
		if authID != "" {
			touched.changed(authID)
		}
		if ch.Status == domain.ChargePatientBilled {
			if err := c.flush(ctx, tx, w); err != nil { // the ledger entry names the charge
				return false, err
			}
			if err := c.ledger.Billed(ctx, tx, ch); err != nil {
				return false, err
			}
		}
		tx.Emit(bus.Event{Subject: SubjectChargeCreated, ClinicID: clinicID,
			Payload: &billingv1.ChargeCreated{Charge: ChargeToProto(ch)}})
	}
	return freed, nil
}

// announceUsage sends the writes waiting in w, reads the used units of the touched
// authorizations (in the same round trip) and emits AuthorizationUsage once per crossing of
// 80% and of 100% (a crossing back below, after voids or more units, arms the notice again).
func (c *Charges) announceUsage(ctx context.Context, tx *bus.Tx, w *chargeWrites, touched *usage) error {
	if len(touched.touched) == 0 {
		return c.flush(ctx, tx, w)
	}
	us, err := c.repo.Usage(ctx, tx, w.take(), touched.sorted())
	if err != nil {
		return err
	}
	return c.announce(ctx, tx, us)
}

// announce emits AuthorizationUsage for the usage read (Usage, DaysAndUsage: in id order).
func (c *Charges) announce(ctx context.Context, tx *bus.Tx, us []domain.AuthorizationUse) error {
	for _, u := range us {
		id := u.ID
		nearly := domain.NearlyUsed(u.AuthorizedUnits, u.UsedUnits)
		exhausted := domain.Exhausted(u.AuthorizedUnits, u.UsedUnits)
		if nearly && !u.NearlyUsedNotified {
			c.emitUsage(tx, SubjectAuthorizationNearlyUsed, u.Authorization)
		}
		if exhausted && !u.ExhaustedNotified {
			c.emitUsage(tx, SubjectAuthorizationExhausted, u.Authorization)
		}
		if nearly != u.NearlyUsedNotified || exhausted != u.ExhaustedNotified {
			if err := c.repo.SetNotified(ctx, tx, id, nearly, exhausted); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Charges) emitUsage(tx *bus.Tx, subject string, a domain.Authorization) {
	tx.Emit(bus.Event{Subject: subject, ClinicID: a.ClinicID, Payload: &billingv1.AuthorizationUsage{
		AuthorizationId: a.ID, ClinicId: a.ClinicID, PatientId: a.PatientID, PayerId: a.PayerID,
		Service: reverse(services, a.Service), AuthorizedUnits: a.AuthorizedUnits, UsedUnits: a.UsedUnits, EndsOn: a.EndsOn,
	}})
}

func (c *Charges) setStatus(ctx context.Context, tx *bus.Tx, w *chargeWrites, ch domain.Charge, status, hold, authID string, authUnits int32) error {
	return c.setStatusReason(ctx, tx, w, ch, status, hold, hold, authID, authUnits)
}

// setStatusReason adds a charge's new status to w and emits ChargeStatusChanged (with
// reason) when its status or hold reason changed.
func (c *Charges) setStatusReason(ctx context.Context, tx *bus.Tx, w *chargeWrites, ch domain.Charge, status, hold, reason, authID string, authUnits int32) error {
	from := ch.Status
	changed := ch.Status != status || ch.HoldReason != hold
	ch.Status, ch.HoldReason, ch.AuthorizationID, ch.AuthorizedUnits = status, hold, authID, authUnits
	w.add(false, ch)
	if (from == domain.ChargePatientBilled) != (status == domain.ChargePatientBilled) {
		if err := c.flush(ctx, tx, w); err != nil { // the ledger follows the charge's status
			return err
		}
	}
	switch {
	case from == domain.ChargePatientBilled && status != domain.ChargePatientBilled:
		if err := c.ledger.Unbilled(ctx, tx, ch); err != nil {
			return err
		}
	case from != domain.ChargePatientBilled && status == domain.ChargePatientBilled:
		if err := c.ledger.Billed(ctx, tx, ch); err != nil {
			return err
		}
	}
	if changed {
		tx.Emit(bus.Event{Subject: SubjectChargeStatusChanged, ClinicID: ch.ClinicID, Payload: &billingv1.ChargeStatusChanged{
			ChargeId: ch.ID, ClinicId: ch.ClinicID, PatientId: ch.PatientID, From: chargeStatuses[from],
			To: chargeStatuses[status], Reason: reason, ChangedAt: timestamppb.New(c.now()),
		}})
	}
	return nil
}

// UpsertAuthorization records or changes an authorization (the caller must see its clinic),
// then recounts its usage and re-evaluates the patient's charges held for authorization.
func (c *Charges) UpsertAuthorization(ctx context.Context, viewer domain.Viewer, in domain.Authorization) (out domain.Authorization, err error) {
	if in.ClinicID != "" && !viewer.CanSeeClinic(in.ClinicID) {
		if _, err := domain.ParseID(in.ClinicID); err == nil {
			return in, fmt.Errorf("%w: clinic", domain.ErrForbidden)
		}
	}
	err = c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		known, err := c.repo.PayerExists(ctx, tx, in.PayerID)
		if err != nil {
			return err
		}
		out, err = domain.ValidateAuthorization(in, known)
		if err != nil {
			return err
		}
		if out.ID == "" {
			out.ID = c.newID()
		}
		if err := c.repo.LockPatient(ctx, tx, out.PatientID, out.ClinicID); err != nil {
			return err
		}
		old, exists, err := c.repo.Authorization(ctx, tx, out.ID)
		if err != nil {
			return err
		}
		if exists && (old.PatientID != out.PatientID || old.ClinicID != out.ClinicID) {
			return fmt.Errorf("%w: an authorization's patient and clinic cannot change", domain.ErrConflict)
		}
		if err := c.repo.SaveAuthorization(ctx, tx, out); err != nil {
			return err
		}
		touched := newUsage()
		touched.changed(out.ID) // its authorized units may have changed: announce
		if err := c.announceUsage(ctx, tx, &chargeWrites{}, touched); err != nil {
			return err
		}
		if err := c.reevaluate(ctx, tx, out.PatientID, out.ClinicID, "authorization"); err != nil {
			return err
		}
		out, _, err = c.repo.Authorization(ctx, tx, out.ID)
		return err
	})
	return out, err
}

// ListAuthorizations lists a clinic's authorizations (ErrForbidden for a clinic the caller
// cannot see).
func (c *Charges) ListAuthorizations(ctx context.Context, viewer domain.Viewer, clinicID, patientID string) ([]domain.Authorization, error) {
	if !viewer.CanSeeClinic(clinicID) {
		return nil, fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	return c.repo.ListAuthorizations(ctx, clinicID, patientID)
}

// ListCharges returns a page of a clinic's charges and the next page's token.
func (c *Charges) ListCharges(ctx context.Context, viewer domain.Viewer, f domain.ChargeFilter) ([]domain.Charge, string, error) {
	if !viewer.CanSeeClinic(f.ClinicID) {
		return nil, "", fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	var vs []domain.Violation
	if f.From != "" {
		if _, err := time.Parse(time.DateOnly, f.From); err != nil {
			vs = append(vs, domain.Violation{Field: "service_date_from", Rule: "service_date_from.date", Msg: "a real date, YYYY-MM-DD"})
		}
	}
	if f.To != "" {
		if _, err := time.Parse(time.DateOnly, f.To); err != nil {
			vs = append(vs, domain.Violation{Field: "service_date_to", Rule: "service_date_to.date", Msg: "a real date, YYYY-MM-DD"})
		} else if f.From != "" && f.To < f.From {
			vs = append(vs, domain.Violation{Field: "service_date_to", Rule: "service_date_to.after_from", Msg: "on or after service_date_from"})
		}
	}
	if len(vs) > 0 {
		return nil, "", &domain.ValidationError{Violations: vs}
	}
	switch {
	case f.Limit <= 0:
		f.Limit = defaultChargesLimit
	case f.Limit > maxChargesL:
		f.Limit = maxChargesL
	}
	return c.repo.ListCharges(ctx, f)
}
