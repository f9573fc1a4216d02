package app

import (
	"google.golang.org/protobuf/types/known/timestamppb"

	intakev1 "github.com/trellis-health/trellis/proto/gen/trellis/intake/v1"
	"github.com/trellis-health/trellis/services/intake/internal/domain"
	"github.com/trellis-health/trellis/services/intake/internal/domain/asam"
)

// The API's enums and the stored codes of the referral funnel, both ways. An enum value with
// no code (unspecified, or one added to the API but not here) maps to "", which the domain
// rules reject; a code with no enum maps to the unspecified value.

type codes[E comparable] struct {
	code map[E]string
	enum map[string]E
}

func newCodes[E comparable](m map[E]string) codes[E] {
	c := codes[E]{code: m, enum: make(map[string]E, len(m))}
	for e, s := range m {
		c.enum[s] = e
	}
	return c
}

var (
	sourceCodes = newCodes(map[intakev1.ReferralSource]string{
		intakev1.ReferralSource_REFERRAL_SOURCE_SELF:         domain.SourceSelf,
		intakev1.ReferralSource_REFERRAL_SOURCE_HOSPITAL:     domain.SourceHospital,
		intakev1.ReferralSource_REFERRAL_SOURCE_DETOX_UNIT:   domain.SourceDetoxUnit,
		intakev1.ReferralSource_REFERRAL_SOURCE_COURT:        domain.SourceCourt,
		intakev1.ReferralSource_REFERRAL_SOURCE_EMPLOYER:     domain.SourceEmployer,
		intakev1.ReferralSource_REFERRAL_SOURCE_FAMILY:       domain.SourceFamily,
		intakev1.ReferralSource_REFERRAL_SOURCE_OTHER_CLINIC: domain.SourceOtherClinic,
		intakev1.ReferralSource_REFERRAL_SOURCE_OTHER:        domain.SourceOther,
	})
	trackCodes = newCodes(map[intakev1.TrackTime]string{
		intakev1.TrackTime_TRACK_TIME_UNSPECIFIED: "",
		intakev1.TrackTime_TRACK_TIME_DAY:         domain.TrackDay,
		intakev1.TrackTime_TRACK_TIME_EVENING:     domain.TrackEvening,
	})
	statusCodes = newCodes(map[intakev1.ReferralStatus]string{
		intakev1.ReferralStatus_REFERRAL_STATUS_NEW:          string(domain.StatusNew),
		intakev1.ReferralStatus_REFERRAL_STATUS_CONTACTED:    string(domain.StatusContacted),
		intakev1.ReferralStatus_REFERRAL_STATUS_SCREENED:     string(domain.StatusScreened),
		intakev1.ReferralStatus_REFERRAL_STATUS_ASSESSED:     string(domain.StatusAssessed),
		intakev1.ReferralStatus_REFERRAL_STATUS_ADMITTED:     string(domain.StatusAdmitted),
		intakev1.ReferralStatus_REFERRAL_STATUS_REFERRED_OUT: string(domain.StatusReferredOut),
		intakev1.ReferralStatus_REFERRAL_STATUS_CLOSED:       string(domain.StatusClosed),
	})
	matchCodes = newCodes(map[intakev1.DuplicateMatch]string{
		intakev1.DuplicateMatch_DUPLICATE_MATCH_NAME_AND_DATE_OF_BIRTH: string(domain.MatchNameAndDateOfBirth),
		intakev1.DuplicateMatch_DUPLICATE_MATCH_PHONE:                  string(domain.MatchPhone),
		intakev1.DuplicateMatch_DUPLICATE_MATCH_EMAIL:                  string(domain.MatchEmail),
	})
	populationCodes = newCodes(map[intakev1.Population]string{
		intakev1.Population_POPULATION_ADULT:      domain.PopulationAdult,
		intakev1.Population_POPULATION_ADOLESCENT: domain.PopulationAdolescent,
	})
	withdrawalCodes = newCodes(map[intakev1.WithdrawalStatus]string{
		intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_NO_DETOX_NEEDED: domain.WithdrawalNoDetoxNeeded,
		intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_DETOX_COMPLETED: domain.WithdrawalDetoxCompleted,
		intakev1.WithdrawalStatus_WITHDRAWAL_STATUS_DETOX_NEEDED:    domain.WithdrawalDetoxNeeded,
	})
	conditionCodes = newCodes(map[intakev1.CoOccurringCondition]string{
		intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_DEPRESSION:   asam.CoDepression,
		intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_ANXIETY:      asam.CoAnxiety,
		intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_PTSD:         asam.CoPTSD,
		intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_BIPOLAR:      asam.CoBipolar,
		intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_PSYCHOSIS:    asam.CoPsychosis,
		intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_SUICIDE_RISK: asam.CoSuicideRisk,
		intakev1.CoOccurringCondition_CO_OCCURRING_CONDITION_OTHER:        asam.CoOther,
	})
)

// SourceCode is the stored code of a referral source ("" for none).
func SourceCode(s intakev1.ReferralSource) string { return sourceCodes.code[s] }

// TrackCode is the stored code of a preferred track time ("" for no preference).
func TrackCode(t intakev1.TrackTime) string { return trackCodes.code[t] }

// StatusCode is the domain status of an API status ("" for none).
func StatusCode(s intakev1.ReferralStatus) domain.ReferralStatus {
	return domain.ReferralStatus(statusCodes.code[s])
}

// PopulationCode is the stored code of a population ("" for none).
func PopulationCode(p intakev1.Population) string { return populationCodes.code[p] }

// WithdrawalCode is the stored code of a withdrawal status ("" for none).
func WithdrawalCode(w intakev1.WithdrawalStatus) string { return withdrawalCodes.code[w] }

// ConditionCodes are the stored codes of co-occurring conditions ("" for an unknown one).
func ConditionCodes(cs []intakev1.CoOccurringCondition) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = conditionCodes.code[c]
	}
	return out
}

func statusEnum(s domain.ReferralStatus) intakev1.ReferralStatus { return statusCodes.enum[string(s)] }

// visibleDuplicates keeps the duplicates in clinics the caller may see.
func visibleDuplicates(ds []domain.Duplicate, sees Viewer) []domain.Duplicate {
	var out []domain.Duplicate
	for _, d := range ds {
		if sees.CanSeeClinic(d.ClinicID) {
			out = append(out, d)
		}
	}
	return out
}

// referralProto is r as the API shows it, with the possible duplicates the caller may see.
func referralProto(r domain.Referral, dups []domain.Duplicate, sees Viewer) *intakev1.Referral {
	out := &intakev1.Referral{
		ReferralId: r.ID, ClinicId: r.ClinicID, Source: sourceCodes.enum[r.Source],
		GivenName: r.GivenName, FamilyName: r.FamilyName, Phone: r.Phone, Email: r.Email,
		PreferredTrack: trackCodes.enum[r.PreferredTrack], Notes: r.Notes,
		FirstContactAt: timestamppb.New(r.FirstContactAt), Status: statusEnum(r.Status), PatientId: r.PatientID,
		CreatedAt: timestamppb.New(r.CreatedAt), UpdatedAt: timestamppb.New(r.UpdatedAt),
	}
	if !r.DateOfBirth.IsZero() {
		out.DateOfBirth = r.DateOfBirth.String()
	}
	for _, d := range visibleDuplicates(dups, sees) {
		pd := &intakev1.PossibleDuplicate{Kind: d.Kind, Id: d.ID}
		for _, m := range d.MatchedOn {
			pd.MatchedOn = append(pd.MatchedOn, matchCodes.enum[string(m)])
		}
		out.PossibleDuplicates = append(out.PossibleDuplicates, pd)
	}
	return out
}

// assessmentProto is a as the API shows it.
func assessmentProto(a domain.Assessment) *intakev1.Assessment {
	out := &intakev1.Assessment{
		AssessmentId: a.ID, ReferralId: a.ReferralID, ClinicId: a.ClinicID, Edition: a.Edition,
		Population: populationCodes.enum[a.Population], Withdrawal: withdrawalCodes.enum[a.Withdrawal],
		RecommendedLevel: a.RecommendedLevel, RecommendationReasons: a.Reasons,
		OverrideLevel: a.OverrideLevel, OverrideReason: a.OverrideReason, FinalLevel: a.FinalLevel,
		AssessedBy: a.AssessedBy, AssessedAt: timestamppb.New(a.AssessedAt),
	}
	for i := range a.Ratings {
		out.Dimensions = append(out.Dimensions, &intakev1.DimensionRating{Dimension: int32(i + 1), Rating: int32(a.Ratings[i]), Notes: a.Notes[i]})
	}
	for _, c := range a.CoOccurring {
		out.CoOccurring = append(out.CoOccurring, conditionCodes.enum[c])
	}
	return out
}
