package app

import (
	"context"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/trellis-health/trellis/pkg/bus"
	"github.com/trellis-health/trellis/pkg/idempotency"
	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
)

// SubjectCoverageChanged is the subject of intakev1.CoverageChanged.
const SubjectCoverageChanged = "trellis.intake.coverage.changed.v1"

// SetCoverage is the command to add a coverage (CoverageID empty) or change one.
type SetCoverage struct {
	Caller         string
	IdempotencyKey string
	RequestHash    []byte
	CanSee         func(clinicID string) bool
	PatientID      string
	CoverageID     string
	Input          domain.CoverageInput
}

// SetCoverage adds or changes a patient's coverage and emits CoverageChanged with the whole
// coverage, in one transaction; every state is kept (coverage_versions). A change that changes
// nothing stores nothing and emits nothing. At most one coverage per priority may be in effect
// on any day (a conflict is a *domain.PreconditionError). An unknown patient, one the caller
// cannot see, or a coverage_id that is not this patient's, is domain.ErrNotFound.
func (s *Intake) SetCoverage(ctx context.Context, cmd SetCoverage) (*intakev1.Coverage, bool, error) {
	var resp *intakev1.SetCoverageResponse
	var replayed, changed bool
	err := s.tx.InTx(ctx, func(ctx context.Context, tx *bus.Tx) error {
		clinicID, err := s.visiblePatientClinic(ctx, tx, cmd.PatientID, cmd.CanSee, true)
		if err != nil {
			return err
		}
		call := idempotency.Call{Caller: cmd.Caller, Key: cmd.IdempotencyKey, Hash: cmd.RequestHash}
		resp, replayed, err = idempotency.Once(ctx, tx, s.repo, call, &intakev1.SetCoverageResponse{}, func() (*intakev1.SetCoverageResponse, error) {
			all, err := s.repo.Coverages(ctx, tx, cmd.PatientID)
			if err != nil {
				return nil, err
			}
			var c domain.Coverage
			if cmd.CoverageID == "" {
				if c, err = domain.NewCoverage(cmd.Input, cmd.PatientID, clinicID, bus.NewID(), cmd.Caller, s.now()); err != nil {
					return nil, err
				}
				changed = true
			} else {
				i := coverageIndex(all, cmd.CoverageID)
				if i < 0 {
					return nil, domain.ErrNotFound
				}
				if c, changed, err = all[i].Change(cmd.Input, cmd.Caller, s.now()); err != nil {
					return nil, err
				}
			}
			if changed {
				if err := domain.CheckPriority(c, all); err != nil {
					return nil, err
				}
				if c.Version == 1 {
					err = s.repo.AddCoverage(ctx, tx, c)
				} else {
					err = s.repo.UpdateCoverage(ctx, tx, c)
				}
				if err != nil {
					return nil, err
				}
				tx.Emit(bus.Event{Subject: SubjectCoverageChanged, ClinicID: c.ClinicID, Payload: &intakev1.CoverageChanged{Coverage: CoverageProto(c)}})
			}
			return &intakev1.SetCoverageResponse{Coverage: CoverageProto(c)}, nil
		})
		return err
	})
	if err != nil {
		return nil, false, err
	}
	c := resp.GetCoverage()
	switch {
	case replayed:
		s.log.InfoContext(ctx, "coverage change replayed", "coverage_id", c.GetCoverageId(), "patient_id", c.GetPatientId())
	case changed:
		s.log.InfoContext(ctx, "coverage set", "coverage_id", c.GetCoverageId(), "patient_id", c.GetPatientId(), "clinic_id", c.GetClinicId())
	default:
		s.log.InfoContext(ctx, "coverage unchanged", "coverage_id", c.GetCoverageId(), "patient_id", c.GetPatientId())
	}
	return c, replayed, nil
}

// ListCoverage lists a patient's coverages by priority (primary first), then the latest start
// first. An unknown patient, or one at a clinic canSee refuses, is domain.ErrNotFound.
func (s *Intake) ListCoverage(ctx context.Context, patientID string, canSee func(string) bool) ([]*intakev1.Coverage, error) {
	var out []*intakev1.Coverage
	err := s.tx.Read(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := s.visiblePatientClinic(ctx, tx, patientID, canSee, false); err != nil {
			return err
		}
		cs, err := s.repo.Coverages(ctx, tx, patientID)
		if err != nil {
			return err
		}
		out = make([]*intakev1.Coverage, len(cs))
		for i, c := range cs {
			out[i] = CoverageProto(c)
		}
		return nil
	})
	return out, err
}

func coverageIndex(cs []domain.Coverage, id string) int {
	for i, c := range cs {
		if c.ID == id {
			return i
		}
	}
	return -1
}

// CoverageProto is c as the API and CoverageChanged show it.
func CoverageProto(c domain.Coverage) *intakev1.Coverage {
	out := &intakev1.Coverage{
		CoverageId:             c.ID,
		PatientId:              c.PatientID,
		ClinicId:               c.ClinicID,
		PayerId:                c.PayerID,
		Plan:                   c.Plan,
		MemberId:               c.MemberID,
		GroupNumber:            c.GroupNumber,
		SubscriberRelationship: consentCodeEnum(relationshipCodes, c.SubscriberRelationship),
		EffectiveFrom:          c.EffectiveFrom.String(),
		Eligibility:            consentCodeEnum(eligibilityCodes, c.Eligibility),
		Priority:               consentCodeEnum(priorityCodes, c.Priority),
		UpdatedAt:              timestamppb.New(c.UpdatedAt),
	}
	if !c.EffectiveTo.IsZero() {
		out.EffectiveTo = c.EffectiveTo.String()
	}
	return out
}

// Codes of the API's coverage enums (stored as these text codes).
var (
	relationshipCodes = map[intakev1.SubscriberRelationship]string{
		intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SELF:   domain.SubscriberSelf,
		intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_SPOUSE: domain.SubscriberSpouse,
		intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_CHILD:  domain.SubscriberChild,
		intakev1.SubscriberRelationship_SUBSCRIBER_RELATIONSHIP_OTHER:  domain.SubscriberOther,
	}
	eligibilityCodes = map[intakev1.Eligibility]string{
		intakev1.Eligibility_ELIGIBILITY_UNVERIFIED: domain.EligibilityUnverified,
		intakev1.Eligibility_ELIGIBILITY_ELIGIBLE:   domain.EligibilityEligible,
		intakev1.Eligibility_ELIGIBILITY_INELIGIBLE: domain.EligibilityIneligible,
	}
	priorityCodes = map[intakev1.CoveragePriority]string{
		intakev1.CoveragePriority_COVERAGE_PRIORITY_PRIMARY:   domain.CoveragePrimary,
		intakev1.CoveragePriority_COVERAGE_PRIORITY_SECONDARY: domain.CoverageSecondary,
		intakev1.CoveragePriority_COVERAGE_PRIORITY_TERTIARY:  domain.CoverageTertiary,
	}
)

// CoverageCodes are the codes of a SetCoverageRequest's enums (relationship, eligibility,
// priority); an undefined value becomes "" (which the domain refuses).
func CoverageCodes(r intakev1.SubscriberRelationship, e intakev1.Eligibility, p intakev1.CoveragePriority) (string, string, string) {
	return relationshipCodes[r], eligibilityCodes[e], priorityCodes[p]
}
