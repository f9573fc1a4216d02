// Package app holds intake's use cases. Each runs in one transaction with the events it emits
// (bus.Store.InTx), so state and outbox commit or roll back together.
package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// SubjectPatientAdmitted is the subject of intakev1.PatientAdmitted.
const SubjectPatientAdmitted = "trellis.intake.patient.admitted.v1"

// ErrIdempotencyKeyReused: the caller already used this idempotency key for a different request.
var ErrIdempotencyKeyReused = errors.New("idempotency key already used for a different request")

// IdempotencyKey is a stored idempotency key with the first call's response.
type IdempotencyKey struct {
	Subject     string // token subject of the caller; keys are scoped per caller
	Key         string
	RequestHash []byte
	Response    []byte
}

// Repository is the storage the use cases need; every method runs in the caller's transaction.
type Repository interface {
	IdempotencyStore
	ReferralStore
	AssessmentStore
	ConsentStore
	DischargeStore
	// Clinic returns the clinic, or nil if there is none with that id.
	Clinic(ctx context.Context, tx pgx.Tx, id string) (*domain.Clinic, error)
	AddAdmission(ctx context.Context, tx pgx.Tx, a domain.Admission) error
}

// Transactor runs a unit of work (bus.Store).
type Transactor interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx *bus.Tx) error) error
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
	IdempotencyKey string
	RequestHash    []byte // hash of the procedure and the request without its key
	Input          domain.AdmissionInput
}

// Admitted is the outcome of AdmitPatient.
type Admitted struct {
	PatientID string
	EpisodeID string
	Replayed  bool // the key was seen before: this is the first call's result, nothing changed
}

// AdmitPatient validates the admission, stores the patient and episode, and emits
// PatientAdmitted, all in one transaction. The idempotency key is claimed first in the same
// transaction: a repeat returns the first result before any rule is checked again (a replay
// must not fail because, say, the start date has since fallen out of the back-dating window),
// and a failed call leaves no key behind, so the caller may correct it and retry with it.
func (s *Intake) AdmitPatient(ctx context.Context, cmd AdmitPatient) (Admitted, error) {
	out := Admitted{PatientID: bus.NewID(), EpisodeID: bus.NewID()}
	resp, err := proto.Marshal(&intakev1.AdmitPatientResponse{PatientId: out.PatientID, EpisodeId: out.EpisodeID})
	if err != nil {
		return Admitted{}, err
	}
	err = s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		prior, err := s.repo.ClaimIdempotencyKey(ctx, tx, IdempotencyKey{
			Subject: cmd.Caller, Key: cmd.IdempotencyKey, RequestHash: cmd.RequestHash, Response: resp,
		})
		if err != nil {
			return err
		}
		if prior != nil {
			if !bytes.Equal(prior.RequestHash, cmd.RequestHash) {
				return ErrIdempotencyKeyReused
			}
			var first intakev1.AdmitPatientResponse
			if err := proto.Unmarshal(prior.Response, &first); err != nil {
				return fmt.Errorf("decode stored response: %w", err)
			}
			out = Admitted{PatientID: first.GetPatientId(), EpisodeID: first.GetEpisodeId(), Replayed: true}
			return nil
		}
		clinic, err := s.repo.Clinic(ctx, tx, cmd.Input.ClinicID)
		if err != nil {
			return err
		}
		a, err := domain.NewAdmission(cmd.Input, clinic, s.now(), out.PatientID, out.EpisodeID)
		if err != nil {
			return err
		}
		if err := s.repo.AddAdmission(ctx, tx, a); err != nil {
			return err
		}
		tx.Emit(bus.Event{Subject: SubjectPatientAdmitted, ClinicID: a.Clinic.ID, Payload: &intakev1.PatientAdmitted{
			PatientId:      a.PatientID,
			EpisodeId:      a.EpisodeID,
			ClinicId:       a.Clinic.ID,
			ProgramTrack:   a.ProgramTrack,
			StartDate:      a.StartDate.String(),
			AdmittedAt:     timestamppb.New(a.AdmittedAt),
			PreferredName:  a.GivenName,
			ContactEmail:   a.ContactEmail,
			ClinicTimeZone: a.Clinic.TimeZone,
		}})
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
			"clinic_id", cmd.Input.ClinicID)
	}
	return out, nil
}
