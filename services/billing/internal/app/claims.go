package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/auth"
	"github.com/trellis-health/trellis/pkg/bus"
	billingv1 "github.com/trellis-health/trellis/proto/gen/trellis/billing/v1"

	"github.com/trellis-health/trellis/services/billing/internal/domain"
	"github.com/trellis-health/trellis/services/billing/internal/x12"
)

// Subjects the claims area emits.
const (
	SubjectClaimFileCreated = "trellis.billing.claim_file.created.v1"
	SubjectClaimSubmitted   = "trellis.billing.claim.submitted.v1"
	// ChargeStatusChanged, shared with the charges area.
)

// ClaimsRepo stores what claims need (implemented by adapters/postgres.Claims).
type ClaimsRepo interface {
	UpsertIdentity(ctx context.Context, tx *bus.Tx, id domain.PatientIdentity) (bool, error)
	ReleaseHeld(ctx context.Context, tx *bus.Tx, patientID, clinicID, reason string) ([]domain.ClaimChargeRef, error)
	SaveBillingProvider(ctx context.Context, tx *bus.Tx, p domain.BillingProvider) error
	BillingProvider(ctx context.Context, clinicID string) (domain.BillingProvider, bool, error)
	SaveDiagnoses(ctx context.Context, tx *bus.Tx, patientID, clinicID string, codes []string) error
	ReadyPayers(ctx context.Context, clinicID, payerID string) ([]domain.Payer, error)
	LockReadyCharges(ctx context.Context, tx *bus.Tx, clinicID, payerID string, now time.Time) ([]domain.ClaimCharge, error)
	LockClaimsToCorrect(ctx context.Context, tx *bus.Tx, clinicID, payerID string, now time.Time) ([]domain.ToCorrect, error)
	HoldCharges(ctx context.Context, tx *bus.Tx, ids []string, reason string) (int, error)
	ReleaseClaimDataHolds(ctx context.Context, tx *bus.Tx, clinicID, payerID string) (map[string]string, error)
	NextInterchangeNumber(ctx context.Context, tx *bus.Tx) (int64, error)
	SaveClaimFile(ctx context.Context, tx *bus.Tx, f domain.ClaimFile, claims []domain.ClaimDraft, recipient string) error
	ClaimFiles(ctx context.Context, clinicID, payerID string) ([]domain.ClaimFile, error)
	ClaimFile(ctx context.Context, id string) (domain.ClaimFile, bool, error)
	ClaimFilePatients(ctx context.Context, fileID string) ([]string, error)
	ListClaims(ctx context.Context, clinicID, patientID, status string) ([]domain.Claim, error)
	Disclosures(ctx context.Context, patientID, clinicID string) ([]domain.Disclosure, error)
}

// X12Sender is who billing is on its 837 files: submitter (loop 1000A, ISA06/GS02) and the
// usage indicator (ISA15, "P" production or "T" test).
type X12Sender struct {
	SubmitterID, SubmitterName, SubmitterPhone, Usage string
}

// Claims is the claims use cases.
type Claims struct {
	store  *bus.Store
	repo   ClaimsRepo
	write  func(x12.ClaimFile) ([]byte, error)
	sender X12Sender
	now    func() time.Time
	newID  func() string
}

// NewClaims returns the claims use cases; write renders an 837 (x12.Write837).
func NewClaims(store *bus.Store, repo ClaimsRepo, write func(x12.ClaimFile) ([]byte, error), sender X12Sender) *Claims {
	return &Claims{store: store, repo: repo, write: write, sender: sender, now: time.Now, newID: bus.NewID}
}

func forbiddenClinic(viewer domain.Viewer, clinicID string) error {
	if !viewer.CanSeeClinic(clinicID) {
		return fmt.Errorf("%w: clinic", domain.ErrForbidden)
	}
	return nil
}

func statusChanged(c domain.ClaimChargeRef, from, to billingv1.ChargeStatus, reason string, at time.Time) bus.Event {
	return bus.Event{Subject: SubjectChargeStatusChanged, ClinicID: c.ClinicID, Payload: &billingv1.ChargeStatusChanged{
		ChargeId: c.ID, ClinicId: c.ClinicID, PatientId: c.PatientID, From: from, To: to, Reason: reason,
		ChangedAt: timestamppb.New(at)}}
}

// RecordIdentity stores a patient's billing identity in tx (a newer one wins; a replay or an
// older one changes nothing) and releases the patient's charges held for want of it. It
// returns whether the identity changed and how many charges were released.
func (c *Claims) RecordIdentity(ctx context.Context, tx *bus.Tx, id domain.PatientIdentity) (changed bool, released int, err error) {
	changed, err = c.repo.UpsertIdentity(ctx, tx, id)
	if err != nil || !changed {
		return false, 0, err
	}
	refs, err := c.repo.ReleaseHeld(ctx, tx, id.PatientID, "", domain.ClaimHoldIdentity)
	if err != nil {
		return true, 0, err
	}
	now := c.now()
	for _, r := range refs {
		tx.Emit(statusChanged(r, billingv1.ChargeStatus_CHARGE_STATUS_HELD, billingv1.ChargeStatus_CHARGE_STATUS_READY, "", now))
	}
	return true, len(refs), nil
}

// SetBillingProvider sets a clinic's billing provider.
func (c *Claims) SetBillingProvider(ctx context.Context, viewer domain.Viewer, p domain.BillingProvider) (domain.BillingProvider, error) {
	p, err := domain.ValidateBillingProvider(p)
	if err != nil {
		return p, err
	}
	if err := forbiddenClinic(viewer, p.ClinicID); err != nil {
		return p, err
	}
	return p, c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error { return c.repo.SaveBillingProvider(ctx, tx, p) })
}

// BillingProvider returns a clinic's billing provider, or domain.ErrNotFound.
func (c *Claims) BillingProvider(ctx context.Context, viewer domain.Viewer, clinicID string) (domain.BillingProvider, error) {
	if err := forbiddenClinic(viewer, clinicID); err != nil {
		return domain.BillingProvider{}, err
	}
	p, ok, err := c.repo.BillingProvider(ctx, clinicID)
	if err == nil && !ok {
		err = domain.ErrNotFound
	}
	return p, err
}

// SetPatientDiagnoses replaces the patient's diagnoses at a clinic and releases the charges
// held for want of one there; it returns how many were released.
func (c *Claims) SetPatientDiagnoses(ctx context.Context, viewer domain.Viewer, patientID, clinicID string, codes []string) (int, error) {
	codes, err := domain.ValidateDiagnoses(codes)
	if err != nil {
		return 0, err
	}
	if err := forbiddenClinic(viewer, clinicID); err != nil {
		return 0, err
	}
	released := 0
	err = c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		if err := c.repo.SaveDiagnoses(ctx, tx, patientID, clinicID, codes); err != nil {
			return err
		}
		refs, err := c.repo.ReleaseHeld(ctx, tx, patientID, clinicID, domain.ClaimHoldDiagnosis)
		if err != nil {
			return err
		}
		now := c.now()
		for _, r := range refs {
			tx.Emit(statusChanged(r, billingv1.ChargeStatus_CHARGE_STATUS_HELD, billingv1.ChargeStatus_CHARGE_STATUS_READY, "", now))
		}
		released = len(refs)
		return nil
	})
	return released, err
}

// ClaimRun is what CreateClaimFiles did: the files it wrote and the charges it held by reason.
type ClaimRun struct {
	Files []domain.ClaimFile
	Held  map[string]int
}

// CreateClaimFiles writes the clinic's ready charges (of payerID, or of every payer) into 837
// files: one transaction per payer, one file per payer and claim type. Charges that cannot be
// claimed are held with their reason; the others are grouped into claims, written, marked
// submitted, and a disclosure is recorded for each claim. Claims that went out and had a
// line's charge voided since are corrected in the same transaction: a replacement (7) with
// every line they should now have (their valid lines and the charges replacing the others),
// or a void (8) when none is left (domain.BuildCorrection); the original is then replaced or
// voided. Charges another run has locked are
// skipped, so no charge goes on two claims. A clinic without a billing provider is
// domain.ErrConflict (nothing changes).
func (c *Claims) CreateClaimFiles(ctx context.Context, viewer domain.Viewer, clinicID, payerID string) (ClaimRun, error) {
	run := ClaimRun{Held: map[string]int{}}
	if err := forbiddenClinic(viewer, clinicID); err != nil {
		return run, err
	}
	// The run works in system scope, deliberately: the caller may see clinicID (checked just
	// above) and every query of the run names clinicID, but the claims need the patients'
	// billing identities (patient_identities), which are per patient across clinics and
	// visible to no clinic's scope (migration 00011), only to every clinic's.
	ctx = auth.WithSystemScope(ctx)
	provider, ok, err := c.repo.BillingProvider(ctx, clinicID)
	if err != nil {
		return run, err
	}
	if !ok {
		return run, fmt.Errorf("%w: the clinic has no billing provider; set one first", domain.ErrConflict)
	}
	payers, err := c.repo.ReadyPayers(ctx, clinicID, payerID)
	if err != nil {
		return run, err
	}
	for _, payer := range payers {
		var files []domain.ClaimFile
		held := map[string]int{}
		err := c.store.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
			files, held = nil, map[string]int{}
			now := c.now().UTC()
			// Charges set aside by an earlier run for their claim data are tried again.
			previous, err := c.repo.ReleaseClaimDataHolds(ctx, tx, clinicID, payer.Code)
			if err != nil {
				return err
			}
			charges, err := c.repo.LockReadyCharges(ctx, tx, clinicID, payer.Code, now)
			if err != nil {
				return err
			}
			var claimable []domain.ClaimCharge
			replacing := map[string][]domain.ClaimCharge{} // by the claim whose correction they go on
			holds := map[string][]domain.ClaimCharge{}
			for _, ch := range charges {
				if reason := domain.ClaimHold(ch, now); reason != "" {
					holds[reason] = append(holds[reason], ch)
					continue
				}
				if ch.ReplacesClaimID != "" {
					replacing[ch.ReplacesClaimID] = append(replacing[ch.ReplacesClaimID], ch)
					continue
				}
				claimable = append(claimable, ch)
			}
			// Corrections first: each claim to correct, with the charges replacing its lines. One
			// that must wait (a replacing charge held, or its claim data missing) is tried again
			// by the next run; its ready replacing charges stay ready.
			toCorrect, err := c.repo.LockClaimsToCorrect(ctx, tx, clinicID, payer.Code, now)
			if err != nil {
				return err
			}
			var drafts []domain.ClaimDraft
			for _, o := range toCorrect {
				d, ok, _ := domain.BuildCorrection(o, replacing[o.ID], c.newID)
				if !ok {
					continue
				}
				if problems := x12.ValidateClaim(x12Kind(d.ClaimType), x12Claim(d)); len(problems) > 0 {
					continue // its data cannot be written yet: the next run tries again
				}
				drafts = append(drafts, d)
			}
			for _, d := range domain.GroupClaims(claimable, c.newID) {
				if problems := x12.ValidateClaim(x12Kind(d.ClaimType), x12Claim(d)); len(problems) > 0 {
					reason := fmt.Sprintf("%s: %s %s", domain.ClaimHoldData, problems[0].Field, problems[0].Rule)
					holds[reason] = append(holds[reason], d.Charges...)
					continue
				}
				drafts = append(drafts, d)
			}
			for reason, list := range holds {
				ids := make([]string, len(list))
				for i, ch := range list {
					ids[i] = ch.ID
					from := billingv1.ChargeStatus_CHARGE_STATUS_READY
					if was, ok := previous[ch.ID]; ok {
						if was == reason {
							continue // still held for the same reason: nothing to announce
						}
						from = billingv1.ChargeStatus_CHARGE_STATUS_HELD
					}
					tx.Emit(statusChanged(domain.ClaimChargeRef{ID: ch.ID, PatientID: ch.PatientID, ClinicID: ch.ClinicID},
						from, billingv1.ChargeStatus_CHARGE_STATUS_HELD, reason, now))
				}
				n, err := c.repo.HoldCharges(ctx, tx, ids, reason)
				if err != nil {
					return err
				}
				if n != len(ids) {
					return fmt.Errorf("hold charges: %d of %d were still ready", n, len(ids))
				}
				held[reason] = n
			}
			for _, claimType := range []string{domain.ClaimInstitutional, domain.ClaimProfessional} {
				var batch []domain.ClaimDraft
				for _, d := range drafts {
					if d.ClaimType == claimType {
						batch = append(batch, d)
					}
				}
				if len(batch) == 0 {
					continue
				}
				f, err := c.writeFile(ctx, tx, provider, payer, claimType, batch, previous, now)
				if err != nil {
					return err
				}
				files = append(files, f)
			}
			return nil
		})
		if err != nil {
			return run, fmt.Errorf("payer %s: %w", payer.Code, err)
		}
		run.Files = append(run.Files, files...)
		for reason, n := range held {
			run.Held[reason] += n
		}
	}
	return run, nil
}

// writeFile renders, stores and announces one file of claims of one payer and claim type.
// previous names the charges of the batch that were held until this run (released for their
// claim data) with their hold reason.
func (c *Claims) writeFile(ctx context.Context, tx *bus.Tx, provider domain.BillingProvider, payer domain.Payer,
	claimType string, batch []domain.ClaimDraft, previous map[string]string, now time.Time) (domain.ClaimFile, error) {
	isa, err := c.repo.NextInterchangeNumber(ctx, tx)
	if err != nil {
		return domain.ClaimFile{}, err
	}
	f := domain.ClaimFile{ID: c.newID(), ClinicID: provider.ClinicID, PayerID: payer.Code, ClaimType: claimType,
		InterchangeControlNumber: isa, ClaimCount: len(batch), CreatedAt: now}
	in := x12.ClaimFile{
		Kind:                     x12Kind(claimType),
		InterchangeControlNumber: isa,
		Usage:                    c.sender.Usage,
		CreatedAt:                now,
		Submitter: x12.Party{Name: c.sender.SubmitterName, ID: c.sender.SubmitterID, ContactName: c.sender.SubmitterName,
			ContactPhone: c.sender.SubmitterPhone},
		Receiver: x12.Party{Name: payer.Name, ID: payer.X12PayerID},
		BillingProvider: x12.Provider{Name: provider.Name, NPI: provider.NPI, TaxID: provider.TaxID, Taxonomy: provider.Taxonomy,
			AddressLine: provider.AddressLine, City: provider.City, State: provider.State, Zip: provider.PostalCode},
		Payer:                x12.Party{Name: payer.Name, ID: payer.X12PayerID},
		ClaimFilingIndicator: domain.PayerFilingIndicator(payer.Kind),
	}
	for _, d := range batch {
		in.Claims = append(in.Claims, x12Claim(d))
		f.TotalCents += d.TotalCents
		f.LineCount += len(d.Charges)
	}
	content, err := c.write(in)
	if err != nil {
		return f, fmt.Errorf("write 837: %w", err)
	}
	f.Content = string(content)
	recipient := fmt.Sprintf("%s (payer id %s)", payer.Name, payer.X12PayerID)
	if err := c.repo.SaveClaimFile(ctx, tx, f, batch, recipient); err != nil {
		return f, err
	}
	for _, d := range batch {
		ids := make([]string, len(d.Charges))
		for i, ch := range d.Charges {
			ids[i] = ch.ID
			var from billingv1.ChargeStatus
			switch {
			case d.FrequencyCode == domain.FrequencyVoid:
				continue // a void claim's charges are void and stay so
			case ch.Status == domain.ChargePaid:
				from = billingv1.ChargeStatus_CHARGE_STATUS_PAID
			case ch.Status == domain.ChargeDenied:
				from = billingv1.ChargeStatus_CHARGE_STATUS_DENIED
			case ch.Status == domain.ChargeSubmitted:
				continue // already submitted; now on the correction
			default:
				from = billingv1.ChargeStatus_CHARGE_STATUS_READY
				if _, ok := previous[ch.ID]; ok {
					from = billingv1.ChargeStatus_CHARGE_STATUS_HELD
				}
			}
			tx.Emit(statusChanged(domain.ClaimChargeRef{ID: ch.ID, PatientID: ch.PatientID, ClinicID: ch.ClinicID},
				from, billingv1.ChargeStatus_CHARGE_STATUS_SUBMITTED, "", now))
		}
		tx.Emit(bus.Event{Subject: SubjectClaimSubmitted, ClinicID: f.ClinicID, Payload: &billingv1.ClaimSubmitted{
			ClaimId: d.ID, FileId: f.ID, ClinicId: f.ClinicID, PatientId: d.PatientID, PayerId: d.PayerID,
			TotalCents: d.TotalCents, ChargeIds: ids, SubmittedAt: timestamppb.New(now),
			FrequencyCode: d.FrequencyCode, CorrectedClaimId: d.ReplacesClaimID}})
	}
	tx.Emit(bus.Event{Subject: SubjectClaimFileCreated, ClinicID: f.ClinicID, Payload: &billingv1.ClaimFileCreated{
		FileId: f.ID, ClinicId: f.ClinicID, PayerId: f.PayerID, ClaimType: reverse(claimTypes, claimType),
		InterchangeControlNumber: isa, ClaimCount: int32(f.ClaimCount), TotalCents: f.TotalCents, CreatedAt: timestamppb.New(now)}})
	return f, nil
}

func x12Kind(claimType string) x12.ClaimKind {
	if claimType == domain.ClaimInstitutional {
		return x12.Institutional
	}
	return x12.Professional
}

// x12Claim is d as the 837 writer takes it; the patient is the subscriber.
func x12Claim(d domain.ClaimDraft) x12.Claim {
	first := d.Charges[0]
	cl := x12.Claim{ControlNumber: d.ControlNumber, FrequencyCode: d.FrequencyCode, OriginalReference: d.OriginalReference,
		TotalCents: d.TotalCents, MemberID: first.MemberID, GroupNumber: first.GroupNumber,
		GivenName: first.Identity.GivenName, FamilyName: first.Identity.FamilyName, DateOfBirth: first.Identity.DateOfBirth,
		Diagnoses: slices.Clone(first.Diagnoses), PriorAuthorization: d.PriorAuthorization}
	for i, ch := range d.Charges {
		line := x12.Line{ControlNumber: domain.LineControlNumber(d.ControlNumber, i+1), ProcedureCode: ch.ProcedureCode,
			Modifiers: ch.Modifiers, Units: ch.Units, ChargeCents: ch.AmountCents, ServiceDate: ch.ServiceDate}
		if d.ClaimType == domain.ClaimInstitutional {
			line.RevenueCode = ch.RevenueCode
		}
		cl.Lines = append(cl.Lines, line)
	}
	return cl
}

// ClaimFiles lists a clinic's files.
func (c *Claims) ClaimFiles(ctx context.Context, viewer domain.Viewer, clinicID, payerID string) ([]domain.ClaimFile, error) {
	if err := forbiddenClinic(viewer, clinicID); err != nil {
		return nil, err
	}
	return c.repo.ClaimFiles(ctx, clinicID, payerID)
}

// ClaimFile returns one file with its content; a file of a clinic viewer cannot see is
// domain.ErrNotFound, like an absent one.
func (c *Claims) ClaimFile(ctx context.Context, viewer domain.Viewer, id string) (domain.ClaimFile, error) {
	f, ok, err := c.repo.ClaimFile(ctx, id)
	if err != nil {
		return f, err
	}
	if !ok || !viewer.CanSeeClinic(f.ClinicID) {
		return domain.ClaimFile{}, domain.ErrNotFound
	}
	return f, nil
}

// ClaimFileForDownload is ClaimFile with the patients whose claims the file holds: a download
// discloses their records, so the handler names them in its response and the audit trail
// records them (DownloadClaimFileResponse.patient_ids; issue 10, finding 5).
func (c *Claims) ClaimFileForDownload(ctx context.Context, viewer domain.Viewer, id string) (domain.ClaimFile, []string, error) {
	f, err := c.ClaimFile(ctx, viewer, id)
	if err != nil {
		return f, nil, err
	}
	patients, err := c.repo.ClaimFilePatients(ctx, f.ID)
	if err != nil {
		return domain.ClaimFile{}, nil, err
	}
	return f, patients, nil
}

// ListClaims lists a clinic's claims (of a patient and in a status, when given).
func (c *Claims) ListClaims(ctx context.Context, viewer domain.Viewer, clinicID, patientID, status string) ([]domain.Claim, error) {
	if err := forbiddenClinic(viewer, clinicID); err != nil {
		return nil, err
	}
	return c.repo.ListClaims(ctx, clinicID, patientID, status)
}

// Disclosures is the patient's accounting of disclosures at a clinic.
func (c *Claims) Disclosures(ctx context.Context, viewer domain.Viewer, patientID, clinicID string) ([]domain.Disclosure, error) {
	if err := forbiddenClinic(viewer, clinicID); err != nil {
		return nil, err
	}
	return c.repo.Disclosures(ctx, patientID, clinicID)
}
