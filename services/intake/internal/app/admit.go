// Package app holds intake's use cases. Each runs in one transaction with the events it emits
// (bus.Store.InTx), so state and outbox commit or roll back together.
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// SubjectPatientAdmitted is the subject of intakev1.PatientAdmitted.
const SubjectPatientAdmitted = "trellis.intake.patient.admitted.v1"

// SubjectPatientContactRecorded is the subject of intakev1.PatientContactRecorded.
const SubjectPatientContactRecorded = "trellis.intake.patient.contact_recorded.v1"

// SubjectPatientBillingIdentityRecorded is the subject of intakev1.PatientBillingIdentityRecorded.
const SubjectPatientBillingIdentityRecorded = "trellis.intake.patient.billing_identity_recorded.v1"

// Repository is the storage the use cases need; every method runs in the caller's transaction.
type Repository interface {
	IdempotencyStore
	ReferralStore
	AssessmentStore
	ConsentStore
	DischargeStore
	ClinicStore
	// Clinic returns the clinic, or nil if there is none with that id.
	Clinic(ctx context.Context, tx pgx.Tx, id string) (*domain.Clinic, error)
	AddAdmission(ctx context.Context, tx pgx.Tx, a domain.Admission) error
}

// Transactor runs a unit of work (bus.Store): InTx for changes and the events they emit,
// Read for queries (a read-only transaction). Both carry the caller's clinic scope, which the
// tables' row-level security policies apply (docs/security.md, "Row-level security").
type Transactor interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx *bus.Tx) error) error
	Read(ctx context.Context, fn func(ctx context.Context, tx pgx.Tx) error) error
}

// Intake is intake's command side.
type Intake struct {
	tx   Transactor
	repo Repository
	log  *slog.Logger
	now  func() time.Time
}

// New returns the use cases; now is the clock (time.Now in production).
func New(tx Transactor, repo Repository, log *slog.Logger, now func() time.Time) *Intake {
	return &Intake{tx: tx, repo: repo, log: log, now: now}
}

// AdmitPatient is the command to admit a new patient.
type AdmitPatient struct {
	Caller         string // token subject
	Sees           Viewer // the caller's clinics (for the referral)
	IdempotencyKey string
	RequestHash    []byte // hash of the procedure and the request without its key
	ReferralID     string // the assessed referral this admission decides; "" for a direct admission
	Input          domain.AdmissionInput
}

// Admitted is the outcome of AdmitPatient.
type Admitted struct {
	PatientID string
	EpisodeID string
	Replayed  bool // the key was seen before: this is the first call's result, nothing changed
}

// AdmitPatient validates the admission, stores the patient and episode, and emits
// PatientAdmitted, all in one transaction, once per idempotency key (see idempotency.Once: a repeat
// returns the first result before any rule is checked again, so a replay does not fail
// because, say, the start date has since fallen out of the back-dating window; a failed call
// leaves no key behind, so the caller may correct it and retry with it).
//
// With a referral id the admission decides that referral (domain.AdmitReferral): it must be one
// the caller may see (else domain.ErrNotFound, checked and the referral locked before the key
// is claimed, as for every call naming a record, so that a replay never answers a caller who
// cannot see the record), assessed for intensive outpatient care at the admission's clinic; it
// moves to admitted with the new patient's id (ReferralStatusChanged), and the event carries
// its first contact and assessed level of care.
func (s *Intake) AdmitPatient(ctx context.Context, cmd AdmitPatient) (Admitted, error) {
	var out Admitted
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		var r *domain.Referral
		if cmd.ReferralID != "" {
			var err error
			if r, err = s.visibleReferral(ctx, tx, cmd.Sees, cmd.ReferralID, true); err != nil {
				return err
			}
		}
		resp, replayed, err := idempotency.Once(ctx, tx, s.repo, idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}, &intakev1.AdmitPatientResponse{},
			func() (*intakev1.AdmitPatientResponse, error) { return s.admit(ctx, tx, cmd, r) })
		if err != nil {
			return err
		}
		out = Admitted{PatientID: resp.GetPatientId(), EpisodeID: resp.GetEpisodeId(), Replayed: replayed}
		return nil
	})
	if err != nil {
		return Admitted{}, err
	}
	// Ids only: never names, dates of birth or emails.
	if out.Replayed {
		s.log.InfoContext(ctx, "admission replayed", "patient_id", out.PatientID, "episode_id", out.EpisodeID)
	} else {
		s.log.InfoContext(ctx, "patient admitted", "patient_id", out.PatientID, "episode_id", out.EpisodeID,
			"clinic_id", cmd.Input.ClinicID, "referral_id", cmd.ReferralID)
	}
	return out, nil
}

// admit is AdmitPatient's work once the key is claimed; r is the referral it decides (locked),
// nil for a direct admission.
func (s *Intake) admit(ctx context.Context, tx *bus.Tx, cmd AdmitPatient, r *domain.Referral) (*intakev1.AdmitPatientResponse, error) {
	clinic, err := s.repo.Clinic(ctx, tx, cmd.Input.ClinicID)
	if err != nil {
		return nil, err
	}
	patientID, episodeID, now := bus.NewID(), bus.NewID(), s.now()
	var a domain.Admission
	var moved domain.Referral
	var change domain.StatusChange
	if r == nil {
		if a, err = domain.NewAdmission(cmd.Input, clinic, now, patientID, episodeID); err != nil {
			return nil, err
		}
	} else {
		assessment, err := s.repo.LatestAssessment(ctx, tx, r.ID)
		if err != nil {
			return nil, err
		}
		if a, err = domain.AdmitReferral(cmd.Input, clinic, *r, assessment, now, patientID, episodeID); err != nil {
			return nil, err
		}
		if moved, change, err = r.Move(domain.StatusAdmitted, domain.ViaAdmission, "", cmd.Caller, bus.NewID(), a.AdmittedAt); err != nil {
			return nil, err
		}
		moved.PatientID = a.PatientID
	}
	// A referral of the same person being created meanwhile waits for the new patient, and
	// then finds it (see CreateReferral).
	if err := s.repo.LockMatchKeys(ctx, tx, domain.MatchKeys(a.Person())); err != nil {
		return nil, err
	}
	if err := s.repo.AddAdmission(ctx, tx, a); err != nil {
		return nil, err
	}
	if a.ReferralID != "" {
		if err := s.repo.MoveReferral(ctx, tx, moved, change); err != nil {
			return nil, err
		}
	}
	tx.Emit(bus.Event{Subject: SubjectPatientAdmitted, ClinicID: a.Clinic.ID, Payload: &intakev1.PatientAdmitted{
		PatientId:      a.PatientID,
		EpisodeId:      a.EpisodeID,
		ClinicId:       a.Clinic.ID,
		ProgramTrack:   a.ProgramTrack,
		StartDate:      a.StartDate.String(),
		AdmittedAt:     timestamppb.New(a.AdmittedAt),
		ClinicTimeZone: a.Clinic.TimeZone,
		ReferralId:     a.ReferralID,
		Program:        a.Program,
		FirstContactAt: timestamppb.New(a.FirstContactAt),
		LevelOfCare:    a.LevelOfCare,
	}})
	// Contact details go on a subject of their own, which only notification subscribes to.
	tx.Emit(bus.Event{Subject: SubjectPatientContactRecorded, ClinicID: a.Clinic.ID, Payload: &intakev1.PatientContactRecorded{
		PatientId:      a.PatientID,
		ClinicId:       a.Clinic.ID,
		PreferredName:  a.GivenName,
		Email:          a.ContactEmail,
		Phone:          a.Phone, // the referral's number; "" for a direct admission
		ClinicTimeZone: a.Clinic.TimeZone,
		RecordedAt:     timestamppb.New(a.AdmittedAt),
	}})
	// The identity a claim carries goes on a subject only billing subscribes to.
	tx.Emit(bus.Event{Subject: SubjectPatientBillingIdentityRecorded, ClinicID: a.Clinic.ID, Payload: &intakev1.PatientBillingIdentityRecorded{
		PatientId:   a.PatientID,
		ClinicId:    a.Clinic.ID,
		GivenName:   a.GivenName,
		FamilyName:  a.FamilyName,
		DateOfBirth: a.DateOfBirth.String(),
		RecordedAt:  timestamppb.New(a.AdmittedAt),
	}})
	if a.ReferralID != "" {
		emitStatusChanged(tx, change)
	}
	return &intakev1.AdmitPatientResponse{PatientId: a.PatientID, EpisodeId: a.EpisodeID}, nil
}
