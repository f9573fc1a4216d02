package app

import (
	"context"
	"errors"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// SubjectPatientDischarged is the subject of intakev1.PatientDischarged.
const SubjectPatientDischarged = "trellis.intake.patient.discharged.v1"

// dischargeReasons maps the API's discharge reasons to their stored codes.
var dischargeReasons = map[intakev1.DischargeReason]string{
	intakev1.DischargeReason_DISCHARGE_REASON_COMPLETED:   domain.DischargeCompleted,
	intakev1.DischargeReason_DISCHARGE_REASON_TRANSFERRED: domain.DischargeTransferred,
	intakev1.DischargeReason_DISCHARGE_REASON_DROPPED_OUT: domain.DischargeDroppedOut,
	intakev1.DischargeReason_DISCHARGE_REASON_TERMINATED:  domain.DischargeTerminated,
	intakev1.DischargeReason_DISCHARGE_REASON_OTHER:       domain.DischargeOther,
}

func dischargeReasonEnum(code string) intakev1.DischargeReason {
	for k, v := range dischargeReasons {
		if v == code {
			return k
		}
	}
	return intakev1.DischargeReason_DISCHARGE_REASON_UNSPECIFIED
}

// DischargePatient is the command to end an episode of care.
type DischargePatient struct {
	Caller         string // token subject
	IdempotencyKey string
	RequestHash    []byte // RequestHash of the procedure and the request without its key
	// CanSeeClinic reports whether the caller may act on a clinic's records; an episode of a
	// clinic it may not see is answered as not found.
	CanSeeClinic  func(clinicID string) bool
	EpisodeID     string
	Reason        intakev1.DischargeReason
	DischargeDate string
	Note          string
}

// DischargePatient discharges an admitted episode and emits PatientDischarged (without the
// note), in one transaction, at most once per idempotency key: a repeat returns the first
// response with Replayed set. The episode is locked, and the caller's access to it checked,
// before the key is claimed: an episode the caller cannot see is domain.ErrNotFound, even on
// a replay.
func (s *Intake) DischargePatient(ctx context.Context, cmd DischargePatient) (*intakev1.DischargePatientResponse, error) {
	var out *intakev1.DischargePatientResponse
	var replayed bool
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		ep, err := s.repo.LockEpisodeForDischarge(ctx, tx, cmd.EpisodeID)
		if err != nil {
			return err
		}
		if ep == nil || cmd.CanSeeClinic == nil || !cmd.CanSeeClinic(ep.ClinicID) {
			return domain.ErrNotFound
		}
		call := idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}
		out, replayed, err = idempotency.Once(ctx, tx, s.repo, call, &intakev1.DischargePatientResponse{}, func() (*intakev1.DischargePatientResponse, error) {
			clinic, err := s.repo.Clinic(ctx, tx, ep.ClinicID)
			if err != nil {
				return nil, err
			}
			if clinic == nil {
				return nil, errors.New("episode's clinic not found")
			}
			done, err := ep.Discharge(domain.DischargeInput{
				Reason: dischargeReasons[cmd.Reason], DischargeDate: cmd.DischargeDate, Note: cmd.Note,
			}, clinic.Location, s.now(), cmd.Caller)
			if err != nil {
				return nil, err
			}
			if err := s.repo.SaveDischarge(ctx, tx, done); err != nil {
				return nil, err
			}
			// Exactly the event's fields: never the note.
			tx.Emit(bus.Event{Subject: SubjectPatientDischarged, ClinicID: done.ClinicID, Payload: &intakev1.PatientDischarged{
				PatientId:     done.PatientID,
				EpisodeId:     done.ID,
				ClinicId:      done.ClinicID,
				Reason:        cmd.Reason,
				DischargeDate: done.DischargeDate.String(),
				StartDate:     done.StartDate.String(),
			}})
			return &intakev1.DischargePatientResponse{Episode: episodeOfCareMessage(done)}, nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	out.Replayed = replayed
	ep := out.GetEpisode()
	if replayed {
		s.log.InfoContext(ctx, "discharge replayed", "episode_id", ep.GetEpisodeId())
	} else {
		s.log.InfoContext(ctx, "patient discharged", "episode_id", ep.GetEpisodeId(), "patient_id", ep.GetPatientId(),
			"clinic_id", ep.GetClinicId())
	}
	return out, nil
}

// episodeOfCareMessage is the API's view of an episode (the note and who discharged are not in it).
func episodeOfCareMessage(e domain.CareEpisode) *intakev1.Episode {
	m := &intakev1.Episode{
		EpisodeId:    e.ID,
		PatientId:    e.PatientID,
		ClinicId:     e.ClinicID,
		ReferralId:   e.ReferralID,
		Program:      e.Program,
		ProgramTrack: e.ProgramTrack,
		StartDate:    e.StartDate.String(),
		Status:       e.Status,
		AdmittedAt:   timestamppb.New(e.AdmittedAt),
	}
	if e.Status == domain.EpisodeDischarged {
		m.DischargeReason = dischargeReasonEnum(e.DischargeReason)
		m.DischargeDate = e.DischargeDate.String()
	}
	return m
}
